"""A cross-encoder reranker in ONNX Runtime: (question, passage) pairs in, relevance out.

The model comes from a folder the user supplies (`RERANKER_MODEL=/path`; none ships with
the app and nothing is downloaded): `tokenizer.json` and `model.onnx` (or
`onnx/model.onnx`, where many published cross-encoders keep their ONNX export). The graph
takes `input_ids` and `attention_mask` (and `token_type_ids` when it asks for them) and
returns one logit per pair (or per class: the last class is taken as "relevant").
No PyTorch on the question path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from core.errors import ModelUnavailable

MAX_TOKENS = 512  # BERT-sized cross-encoders read at most this many tokens per pair


def model_path(directory: Path) -> Path | None:
    """The ONNX graph in a cross-encoder folder, if there is one."""
    return next(
        (p for p in (directory / "model.onnx", directory / "onnx" / "model.onnx") if p.is_file()),
        None,
    )


class OnnxCrossEncoder:
    """Scores (query, passage) pairs; blocking: call `score` in a worker thread (ONNX
    Runtime and the tokenizer release the GIL)."""

    def __init__(self, directory: Path, max_tokens: int = MAX_TOKENS) -> None:
        graph = model_path(directory)
        vocabulary = directory / "tokenizer.json"
        if graph is None or not vocabulary.is_file():
            raise ModelUnavailable(
                f"RERANKER_MODEL={directory} is not a cross-encoder folder: it needs "
                "tokenizer.json and model.onnx (or onnx/model.onnx)."
            )
        self._tokenizer = Tokenizer.from_file(str(vocabulary))
        self._tokenizer.enable_truncation(max_length=max_tokens)
        self._tokenizer.enable_padding()
        self._session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.name = directory.name

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        """One relevance score per passage (higher is more relevant)."""
        if not passages:
            return []
        encodings = self._tokenizer.encode_batch([(query, p) for p in passages])
        feed = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        outputs = self._session.run(None, {k: v for k, v in feed.items() if k in self._inputs})
        logits = np.asarray(outputs[0], dtype=np.float32).reshape(len(passages), -1)
        scores: list[float] = logits[:, -1].tolist()
        return scores
