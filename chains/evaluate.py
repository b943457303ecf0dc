"""`python -m chains.evaluate GOLDEN`: how well each search mode finds the right passage.

A golden set is a JSON Lines file, one question per line:

    {"question": "Can two processes share Milvus Lite?", "source": "milvus-overview.md",
     "answer": "only one process may open it"}

`source` is the document that answers (a name, or a list of acceptable names); `answer`,
optional, is a snippet the answering passage contains (compared ignoring case, spacing and
Markdown's `*` and backtick marks); `kind`, optional, groups questions (for example
"identifier", "paraphrase", "competing"). For each search mode the command prints one
table row: hit@1 (the first passage is from the right document), hit@k (one of the first
k is), MRR (the mean of 1 / rank of the first right passage) and answer@k (one of the
first k passages contains the snippet, over the questions that give one); when questions
have kinds, a second table breaks each mode down by kind. All questions run in one process
against the knowledge base, with a progress bar; `--json` writes every question's passages
and ranks for a closer look.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from tqdm import tqdm

from chains.options import SearchOptions
from chains.search_arguments import add_search_arguments, options_from, settings_from
from core.errors import UserFacingError
from core.knowledge import AccessScope, Searcher, SearchMode
from core.logs import configure_logging
from core.settings import Settings

EXIT_OK, EXIT_ERROR = 0, 2
MODES: tuple[SearchMode, ...] = ("dense", "keyword", "hybrid", "mmr")


class GoldenQuestion(BaseModel):
    """One line of a golden set."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    question: str = Field(min_length=1)
    source: tuple[str, ...]
    answer: str | None = None
    kind: str | None = None

    @field_validator("source", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value


def read_golden(path: Path) -> list[GoldenQuestion]:
    """The questions of a JSON Lines golden set; a bad line is an error naming it."""
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            questions.append(GoldenQuestion.model_validate_json(line))
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(p) for p in problem["loc"]) or "line"
            raise UserFacingError(f"{path}:{number}: {where}: {problem['msg']}") from None
    if not questions:
        raise UserFacingError(f"{path} holds no questions")
    return questions


@dataclass(frozen=True)
class Graded:
    """How one question fared in one mode."""

    question: str
    mode: SearchMode
    kind: str | None
    rank: int | None  # of the first passage from an expected document
    answer_found: bool | None  # None: the golden line gives no answer snippet
    milliseconds: float
    passages: list[dict[str, Any]]


_MARKS = str.maketrans("", "", "*`")


def _normal(text: str) -> str:
    r"""Text for comparing snippets: lower case, single spaces, no emphasis or code marks.

    >>> _normal("If *delay* is `None`,\n  no limit")
    'if delay is none, no limit'
    """
    return " ".join(text.translate(_MARKS).lower().split())


async def grade(
    searcher: Searcher, golden: GoldenQuestion, mode: SearchMode, options: SearchOptions
) -> Graded:
    """Search once (the whole knowledge base) and grade the passages."""
    request = options.model_copy(update={"search_type": mode}).request(
        golden.question, AccessScope.everything()
    )
    started = time.perf_counter()
    hits = await searcher.search(request)
    elapsed = (time.perf_counter() - started) * 1000
    rank = next((n for n, hit in enumerate(hits, 1) if hit.source in golden.source), None)
    answer = None
    if golden.answer is not None:
        answer = any(_normal(golden.answer) in _normal(hit.text) for hit in hits)
    passages = [
        {"source": h.source, "page": h.page, "score": h.score, "ranks": dict(h.ranks)} for h in hits
    ]
    return Graded(golden.question, mode, golden.kind, rank, answer, round(elapsed, 1), passages)


@dataclass(frozen=True)
class Summary:
    mode: SearchMode
    kind: str | None
    questions: int
    hit_at_1: float
    hit_at_k: float
    mrr: float
    answer_at_k: float | None
    milliseconds: float


def summarize(mode: SearchMode, graded: Sequence[Graded], kind: str | None = None) -> Summary:
    """The metrics of one mode, over the questions of `kind` (None: all of them)."""
    mine = [g for g in graded if g.mode == mode and kind in (None, g.kind)]
    with_answer = [g.answer_found for g in mine if g.answer_found is not None]
    return Summary(
        mode=mode,
        kind=kind,
        questions=len(mine),
        hit_at_1=sum(g.rank == 1 for g in mine) / len(mine),
        hit_at_k=sum(g.rank is not None for g in mine) / len(mine),
        mrr=sum(1 / g.rank for g in mine if g.rank) / len(mine),
        answer_at_k=sum(with_answer) / len(with_answer) if with_answer else None,
        milliseconds=sum(g.milliseconds for g in mine) / len(mine),
    )


def render_table(summaries: Sequence[Summary], k: int) -> str:
    """A Markdown table, one row per summary (with a kind column when they have kinds)."""
    by_kind = any(s.kind is not None for s in summaries)
    kind_head, kind_rule = ("kind | ", "---|") if by_kind else ("", "")
    rows = [
        f"| mode | {kind_head}questions | hit@1 | hit@{k} | MRR | answer@{k} | ms/question |",
        f"|---|{kind_rule}---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        answer = f"{s.answer_at_k:.0%}" if s.answer_at_k is not None else "n/a"
        kind = f"{s.kind} | " if by_kind else ""
        rows.append(
            f"| {s.mode} | {kind}{s.questions} | {s.hit_at_1:.0%} | {s.hit_at_k:.0%} "
            f"| {s.mrr:.3f} | {answer} | {s.milliseconds:.0f} |"
        )
    return "\n".join(rows)


async def evaluate(
    searcher: Searcher,
    questions: Sequence[GoldenQuestion],
    modes: Sequence[SearchMode],
    options: SearchOptions,
    *,
    progress: bool = True,
) -> list[Graded]:
    """Every question in every mode, one at a time (so latencies are per question)."""
    graded = []
    with tqdm(total=len(questions) * len(modes), unit="search", disable=not progress) as bar:
        for mode in modes:
            for golden in questions:
                graded.append(await grade(searcher, golden, mode, options))
                bar.update(1)
    return graded


async def run(
    settings: Settings,
    questions: Sequence[GoldenQuestion],
    modes: Sequence[SearchMode],
    options: SearchOptions,
) -> list[Graded]:
    from core.resources import opened

    async with opened(settings) as resources:
        searcher = resources.searcher
        if (reason := searcher.unavailable(options.rerank)) is not None:
            raise UserFacingError(reason)
        return await evaluate(searcher, questions, modes, options)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m chains.evaluate",
        description="Measure how well each search mode finds the passages a golden set expects.",
    )
    parser.add_argument("golden", type=Path, help="a JSON Lines golden set (see the README)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    add_search_arguments(parser)
    parser.add_argument("--json", type=Path, help="also write every graded question here")
    return parser


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()
    try:
        settings = settings_from(args)
        options = options_from(args)
        questions = read_golden(args.golden)
    except (UserFacingError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    from chains.errors import explain

    try:
        graded = asyncio.run(run(settings, questions, args.modes, options))
    except Exception as exc:
        print(f"error: {explain(exc, operator=True)}", file=sys.stderr)
        return EXIT_ERROR
    summaries = [summarize(mode, graded) for mode in args.modes]
    print(f"{len(questions)} questions from {args.golden}, k={options.k}", file=out)
    print(render_table(summaries, options.k), file=out)
    kinds = list(dict.fromkeys(q.kind for q in questions if q.kind is not None))
    if kinds:
        by_kind = [summarize(mode, graded, kind) for mode in args.modes for kind in kinds]
        print(f"\nBy kind of question:\n{render_table(by_kind, options.k)}", file=out)
    if args.json:
        record = {
            "summary": [asdict(s) for s in summaries],
            "questions": [asdict(g) for g in graded],
        }
        args.json.write_text(json.dumps(record, indent=1, ensure_ascii=False), encoding="utf-8")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
