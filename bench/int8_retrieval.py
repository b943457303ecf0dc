"""Retrieval quality of the app's float32 embedding model against a dynamically quantized
int8 copy of it, on golden sets.

python -m bench.int8_retrieval CORPUS GOLDEN [CORPUS GOLDEN ...] [--k 4]

For each pair, the corpus folder is ingested (default chunk settings, as `python -m
ingest`) into a fresh Milvus Lite store once per model, and the golden set is graded in
the four search modes as `python -m chains.evaluate` does (hit@1, hit@k, MRR, answer@k).
The int8 model is `bench.embeddings.quantize`'s (onnxruntime's `quantize_dynamic`, QInt8
weights); its store records its own model name, so the app's collection-model check would
refuse to mix the two. Below the table: each question whose first right passage's rank,
or whose answer snippet's presence, differs between the models. Needs onnx (the dev
install) for the quantization.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from langchain_core.embeddings import Embeddings

from bench.common import bench_settings, command_line, scratch, table, versions
from bench.embeddings import quantize
from chains.evaluate import MODES, GoldenQuestion, Graded, evaluate, read_golden, summarize
from chains.options import SearchOptions
from core.batched_embeddings import CoalescingEmbeddings
from core.logs import configure_logging
from core.onnx_embeddings import OnnxEmbeddings
from core.onnx_model import ModelFiles, default_model_files
from core.providers import build_embeddings
from core.resources import Resources
from core.settings import LOCAL_EMBEDDING_MODEL, Settings
from ingest.discovery import discover
from ingest.pipeline import IngestOptions, Ingestor

FLOAT32, INT8 = "float32", "int8"
INT8_MODEL_NAME = f"{LOCAL_EMBEDDING_MODEL} (dynamic int8, bench)"


@dataclass(frozen=True)
class Run:
    """One corpus ingested with one model and its golden set graded."""

    golden: Path
    model: str
    chunks: int
    ingest_seconds: float
    graded: list[Graded]


def model_embeddings(model: str, settings: Settings, int8: ModelFiles) -> Embeddings:
    """The app's embedding function (`core.providers`), or the same wrapper around the
    int8 model: only the model file differs."""
    if model == FLOAT32:
        return build_embeddings(settings)
    return CoalescingEmbeddings(OnnxEmbeddings(int8, batch_size=settings.embedding_batch_size))


async def measure(
    corpus: Path,
    golden: Path,
    questions: Sequence[GoldenQuestion],
    model: str,
    int8: ModelFiles,
    options: SearchOptions,
) -> Run:
    """Ingest `corpus` into a new Milvus Lite store with `model`, then grade every
    question in every mode."""
    from core.store import MilvusKnowledgeBase

    with scratch(f"bench-int8-{model}-") as lite_dir:
        settings = bench_settings(None, lite_dir)
        if model == INT8:
            settings = settings.model_copy(update={"embedding_model": INT8_MODEL_NAME})
        embeddings = await asyncio.to_thread(model_embeddings, model, settings, int8)
        kb = await MilvusKnowledgeBase.open(settings, embeddings, drop=True, bulk_load=True)
        resources = Resources(settings=settings, embeddings=embeddings, kb=kb, chat_model=None)
        try:
            found = discover([corpus])
            started = time.perf_counter()
            outcomes = await Ingestor(kb, IngestOptions.from_settings(settings)).ingest_many(
                found.files
            )
            ingest_seconds = time.perf_counter() - started
            failed = [o for o in outcomes if not o.ok]
            if failed or found.skipped:
                raise RuntimeError(f"{corpus}: failed {failed}, skipped {found.skipped}")
            graded = await evaluate(
                resources.searcher, questions, MODES, options, progress=sys.stderr.isatty()
            )
        finally:
            await resources.close()
    chunks = sum(o.chunks for o in outcomes)
    return Run(golden, model, chunks, ingest_seconds, graded)


def summary_rows(runs: Sequence[Run]) -> list[list[str]]:
    rows = []
    for run in runs:
        for mode in MODES:
            s = summarize(mode, run.graded)
            answer = f"{s.answer_at_k:.0%}" if s.answer_at_k is not None else "n/a"
            rows.append(
                [
                    run.golden.stem,
                    run.model,
                    mode,
                    str(s.questions),
                    f"{s.hit_at_1:.0%}",
                    f"{s.hit_at_k:.0%}",
                    f"{s.mrr:.3f}",
                    answer,
                ]
            )
    return rows


def differences(before: Run, after: Run) -> list[str]:
    """The questions graded differently by the two runs of one golden set."""

    def shown(rank: int | None, answer: bool | None) -> str:
        found = {True: ", answer", False: ", no answer", None: ""}[answer]
        return f"rank {rank or '-'}{found}"

    lines = []
    for a, b in zip(before.graded, after.graded, strict=True):
        assert (a.question, a.mode) == (b.question, b.mode)
        if (a.rank, a.answer_found) != (b.rank, b.answer_found):
            lines.append(
                f"- {before.golden.stem}, {a.mode}: {a.question!r}: "
                f"{before.model} {shown(a.rank, a.answer_found)}; "
                f"{after.model} {shown(b.rank, b.answer_found)}"
            )
    return lines


async def run_all(
    pairs: Sequence[tuple[Path, Path]], options: SearchOptions, folder: Path, per_channel: bool
) -> list[Run]:
    int8 = await asyncio.to_thread(quantize, default_model_files(), folder, per_channel)
    runs = []
    for corpus, golden in pairs:
        questions = read_golden(golden)
        for model in (FLOAT32, INT8):
            run = await measure(corpus, golden, questions, model, int8, options)
            print(
                f"{golden.stem} {model}: {run.chunks} chunks ingested in "
                f"{run.ingest_seconds:.0f} s",
                file=sys.stderr,
                flush=True,
            )
            runs.append(run)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "pairs", nargs="+", type=Path, metavar="CORPUS GOLDEN", help="corpus folder, golden set"
    )
    parser.add_argument(
        "--k",
        type=int,
        default=SearchOptions.model_fields["k"].default,
        help="passages to retrieve (default %(default)s)",
    )
    parser.add_argument(
        "--per-channel",
        action="store_true",
        help="quantize with one scale per output channel (default: one per weight tensor)",
    )
    args = parser.parse_args()
    if len(args.pairs) % 2:
        parser.error("give a golden set after each corpus folder")
    pairs = list(zip(args.pairs[::2], args.pairs[1::2], strict=True))
    configure_logging()
    options = SearchOptions(k=args.k)
    started = time.perf_counter()
    with scratch("bench-int8-model-") as folder:
        runs = asyncio.run(run_all(pairs, options, folder, args.per_channel))
    wall = time.perf_counter() - started

    print(f"`{command_line()}`: k={options.k}, wall time {wall:.0f} s")
    print(versions())
    for run in runs:
        print(
            f"{run.golden.stem}, {run.model}: {run.chunks} chunks, "
            f"ingested in {run.ingest_seconds:.0f} s"
        )
    print()
    k = options.k
    headers = ["set", "model", "mode", "questions", "hit@1", f"hit@{k}", "MRR", f"answer@{k}"]
    print(table(headers, summary_rows(runs)))
    changed = [
        line
        for before, after in zip(runs[::2], runs[1::2], strict=True)
        for line in differences(before, after)
    ]
    print()
    print("Questions graded differently:" if changed else "No question graded differently.")
    if changed:
        print("\n".join(changed))


if __name__ == "__main__":
    main()
