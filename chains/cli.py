"""`python -m chains "QUESTION"`: ask the knowledge base from the terminal.

`--questions FILE` (or `-` for standard input) asks many in one process, one per line
(plain text, or JSON lines with a "question" field), so scripts do not pay for loading
the models and opening the store once per question. With `--json` each answer is one
JSON line, in the order asked.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from chains.options import SEARCH_TYPES, SearchOptions
from chains.search_arguments import add_search_arguments, options_from, settings_from
from core.errors import UserFacingError
from core.knowledge import AccessScope, heading_path
from core.logs import configure_logging
from core.settings import Settings

if TYPE_CHECKING:
    from chains.rag import RagChain

EXIT_OK, EXIT_ERROR = 0, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m chains", description="Ask the knowledge base a question."
    )
    parser.add_argument("question", nargs="?", help="the question (or use --questions)")
    parser.add_argument(
        "--questions",
        metavar="FILE",
        type=argparse.FileType("r", encoding="utf-8"),
        help="ask every question in FILE (- for standard input): one per line, plain text "
        'or JSON lines with a "question" field',
    )
    add_search_arguments(parser)
    parser.add_argument(
        "--search-type",
        choices=sorted(SEARCH_TYPES),
        default=SearchOptions.model_fields["search_type"].default,
        help="hybrid (keyword + dense, the default), dense, keyword, or mmr (hybrid, "
        "diversified); `similarity` is the old name of dense",
    )
    parser.add_argument(
        "--source", action="append", default=[], help="only search this source (repeatable)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def read_questions(lines: Iterable[str]) -> list[str]:
    """The questions in `lines`: blank lines skipped; a line starting with `{` is JSON
    with a "question" field (a bad one is an error naming its line)."""
    questions = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        if text.startswith("{"):
            try:
                question = json.loads(text)["question"]
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f'line {number} is not JSON with a "question": {exc}') from exc
            if not isinstance(question, str) or not question.strip():
                raise ValueError(f"line {number}: the question must be non-empty text")
            text = question.strip()
        questions.append(text)
    if not questions:
        raise ValueError("the questions file holds no questions")
    return questions


async def ask_many(
    settings: Settings, questions: Sequence[str], options: SearchOptions
) -> AsyncIterator[dict[str, Any]]:
    """Answer each question from the whole knowledge base, in order, with the models
    loaded and the store opened once (the terminal is trusted: it reads the store
    directly); yields `{"question", "answer", "search_type", "notice", "sources"}`."""
    from chains.model_budget import ModelLimits
    from chains.rag import build_rag_chain
    from chains.retriever import PassageRetriever
    from core.process_gc import resume_collection
    from core.resources import opened

    async with opened(settings) as resources:
        chain = build_rag_chain(
            PassageRetriever(searcher=resources.searcher),
            resources.chat_model,
            ModelLimits.from_settings(settings),
        )
        resume_collection()  # held while starting (chains/__main__.py)
        for question in questions:
            yield await _answer(chain, question, options)


async def _answer(chain: RagChain, question: str, options: SearchOptions) -> dict[str, Any]:
    from chains.rag import rag_input
    from chains.retriever import Retrieval
    from chains.safety import sanitize_markdown

    answer: list[str] = []
    retrieval: Retrieval | None = None
    inputs = rag_input(question, options=options, scope=AccessScope.everything())
    async for chunk in chain.astream(inputs):
        retrieval = chunk.get("retrieval", retrieval)
        answer.append(chunk.get("answer", ""))
    passages = retrieval.passages if retrieval else []
    return {
        "question": question,
        "answer": sanitize_markdown("".join(answer)),
        "search_type": retrieval.search_type if retrieval else options.search_type,
        "notice": retrieval.notice if retrieval else None,
        "sources": [p.as_dict() for p in passages],
    }


def render_text(result: dict[str, Any]) -> str:
    lines = [result["answer"], "", f"Sources ({result['search_type']} search):"]
    for s in result["sources"]:
        page = f", page {s['page']}" if s["page"] is not None else ""
        score = f" (score {s['score']:.2f})" if s["score"] is not None else ""
        lines.append(f"  [{s['n']}] {heading_path(s['source'], s['section'])}{page}{score}")
    if result["notice"]:
        lines += ["", result["notice"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.question is None) == (args.questions is None):
        parser.error("give a question, or --questions FILE, not both")
    configure_logging()
    try:
        settings = settings_from(args)
        options = options_from(args, search_type=args.search_type, sources=tuple(args.source))
        questions = [args.question] if args.questions is None else read_questions(args.questions)
    except (UserFacingError, ValueError) as exc:  # settings, options and question files
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    from chains.errors import explain

    async def run() -> None:
        async for result in ask_many(settings, questions, options):
            if args.json:
                text = json.dumps(result, ensure_ascii=False)
            elif len(questions) == 1:
                text = render_text(result)
            else:
                text = f"Q: {result['question']}\n{render_text(result)}\n"
            print(text, file=out, flush=True)

    try:
        asyncio.run(run())
    except Exception as exc:
        print(f"error: {explain(exc, operator=True)}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK
