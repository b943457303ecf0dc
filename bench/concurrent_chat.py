"""Many users asking at once through the RAG chain, idle and while an ingest runs.

    python -m bench.concurrent_chat [--users 1 10 50] [--token-ms 20] [--ingest-mb 3]
        [--rounds 5] [--search-type hybrid|dense|keyword|mmr] [--fusion relative|rrf]
        [--uri URI] [--stalls]

The chat model is a fake that streams at a fixed rate (its first token comes `token-ms`
after the call), so what is measured is the app: embedding the question, searching
Milvus, building the prompt, scheduling. Overhead = time to first token - token-ms.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, get_args

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from bench.common import bench_settings, command_line, percentile, scratch, table, versions
from bench.corpus import generate
from bench.loop_lag import LoopLag
from chains.options import SearchOptions
from chains.rag import build_rag_chain, rag_input
from chains.retriever import PassageRetriever
from core.knowledge import AccessScope, Fusion
from core.process_gc import freeze_start_up
from core.resources import open_resources
from ingest.pipeline import IngestOptions, Ingestor, ProgressEvent

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
ROUND_PAUSE = 0.1  # seconds between one round's last answer and the next round
QUESTIONS = [
    "What is retrieval-augmented generation?",
    "How does MMR differ from similarity search?",
    "Can two processes share a Milvus Lite database?",
    "Do I need an OpenAI key?",
    "What file types can I upload?",
]


class PacedChatModel(BaseChatModel):
    """Streams `tokens` words, one every `delay` seconds (the first after `delay` too)."""

    delay: float = 0.02
    tokens: int = 30

    @property
    def _llm_type(self) -> str:
        return "paced-fake"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage("word " * self.tokens))])

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        raise NotImplementedError

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for n in range(self.tokens):
            await asyncio.sleep(self.delay)
            yield ChatGenerationChunk(message=AIMessageChunk(content=f"word{n} "))


async def one_user(chain: Any, question: str, options: SearchOptions) -> float:
    started = time.perf_counter()
    first: float | None = None
    # Every chat searches within its user's scope (their documents and the library).
    inputs = rag_input(question, options=options, scope=AccessScope.for_user("bench"))
    async for chunk in chain.astream(inputs):
        if "answer" in chunk and first is None:
            first = time.perf_counter() - started
    assert first is not None
    return first


async def scenario(
    chain: Any,
    users: int,
    delay: float,
    options: SearchOptions,
    stalls: bool = False,
    rounds: int = 1,
) -> list[float]:
    """`users` asking at once, `rounds` times in a row: percentiles over every answer of
    every round (one burst alone meets one moment of an ingest, so single runs varied
    by 2x), and the worst loop stall of all of them."""
    ttfts: list[float] = []
    with LoopLag(sample=stalls) as lag:
        for round_ in range(rounds):
            questions = [QUESTIONS[i % len(QUESTIONS)] + f" ({round_}.{i})" for i in range(users)]
            ttfts += await asyncio.gather(*(one_user(chain, q, options) for q in questions))
            await asyncio.sleep(ROUND_PAUSE)
    if stalls and lag.stacks:
        print(f"where the loop stalled ({users} users):\n{lag.report()}", flush=True)
    overheads = [t - delay for t in ttfts]
    return [
        percentile(ttfts, 50) * 1000,
        percentile(ttfts, 95) * 1000,
        percentile(overheads, 50) * 1000,
        percentile(overheads, 95) * 1000,
        lag.worst * 1000,
    ]


async def run(args: argparse.Namespace, folder: Path) -> tuple[list[list[str]], dict[str, float]]:
    """The table's rows, and p95 overheads by condition; the store (Milvus Lite) and the
    generated corpus go in `folder`."""
    settings = bench_settings(args.uri, folder)
    resources = await open_resources(settings, collection="bench_chat", drop=True)
    resources.embeddings.embed_documents(["warm up"])
    kb = resources.kb
    ingestor = Ingestor(kb, IngestOptions.from_settings(settings))
    await ingestor.ingest_many([(p, p.name) for p in sorted(SAMPLE.iterdir())])
    delay = args.token_ms / 1000
    options = SearchOptions(search_type=args.search_type, fusion=args.fusion, k=4)
    chain = build_rag_chain(PassageRetriever(searcher=kb), PacedChatModel(delay=delay))
    await scenario(chain, max(args.users), delay, options)  # warm-up: thread pool, batch shapes
    freeze_start_up()  # as the app does once it is up

    rows: list[list[str]] = []
    results: dict[str, float] = {}
    for users in args.users:
        stats = await scenario(chain, users, delay, options, args.stalls, args.rounds)
        results[f"idle-{users}"] = stats[3]
        rows.append(["idle", str(users), *(f"{v:.0f}" for v in stats)])
        print(" | ".join(rows[-1]), flush=True)

    files = generate(folder / "corpus", args.ingest_mb)
    started = asyncio.Event()

    async def on_progress(event: ProgressEvent) -> None:
        if event.stage == "stored":
            started.set()

    ingest = asyncio.create_task(ingestor.ingest_many([(p, p.name) for p in files], on_progress))
    await started.wait()
    for users in args.users:
        stats = await scenario(chain, users, delay, options, args.stalls, args.rounds)
        if ingest.done():
            print("the ingest finished during this scenario; use a larger --ingest-mb")
        results[f"ingest-{users}"] = stats[3]
        rows.append(
            [f"during a {args.ingest_mb:g} MB ingest", str(users), *(f"{v:.0f}" for v in stats)]
        )
        print(" | ".join(rows[-1]), flush=True)
    outcomes = await ingest
    assert all(o.ok for o in outcomes)
    await resources.close()
    return rows, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--token-ms", type=float, default=20.0)
    parser.add_argument("--ingest-mb", type=float, default=3.0)
    parser.add_argument(
        "--rounds", type=int, default=5, help="bursts per condition and number of users"
    )
    parser.add_argument("--uri", help="a Milvus server (default: Milvus Lite in a temp dir)")
    parser.add_argument(
        "--stalls", action="store_true", help="print where the event loop was when it stalled"
    )
    parser.add_argument(
        "--search-type",
        choices=["hybrid", "dense", "keyword", "mmr"],
        default=SearchOptions.model_fields["search_type"].default,
    )
    parser.add_argument(
        "--fusion",
        choices=get_args(Fusion),
        default=SearchOptions.model_fields["fusion"].default,
        help="how hybrid search and MMR fuse the routes",
    )
    args = parser.parse_args()
    with scratch("bench-chat-") as folder:
        rows, results = asyncio.run(run(args, folder))
    print()
    print(
        f"`{command_line()}` against {args.uri or 'Milvus Lite'} ({args.search_type} search, "
        f"{args.fusion} fusion; "
        f"each row: {args.rounds} bursts, percentiles over all their answers)"
    )
    print(versions())
    print()
    headers = [
        "condition",
        "users",
        "TTFT p50 ms",
        "TTFT p95 ms",
        "overhead p50 ms",
        "overhead p95 ms",
        "worst loop stall ms",
    ]
    print(table(headers, rows))
    one, most = min(args.users), max(args.users)
    print()
    print(
        f"p95 overhead, {most} users / 1 user idle: "
        f"{results[f'idle-{most}'] / results[f'idle-{one}']:.1f}x (goal < 5x); "
        f"during ingest / idle at {most} users: "
        f"{results[f'ingest-{most}'] / results[f'idle-{most}']:.1f}x (goal < 2x)"
    )


if __name__ == "__main__":
    main()
