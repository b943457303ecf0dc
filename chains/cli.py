"""`python -m chains "QUESTION"`: ask the knowledge base from the terminal."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, TextIO

from chains.options import SEARCH_TYPES, SearchOptions
from chains.search_arguments import add_search_arguments, options_from, settings_from
from core.errors import UserFacingError
from core.knowledge import AccessScope
from core.logs import configure_logging
from core.settings import Settings

EXIT_OK, EXIT_ERROR = 0, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m chains", description="Ask the knowledge base a question."
    )
    parser.add_argument("question")
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


async def ask(settings: Settings, question: str, options: SearchOptions) -> dict[str, Any]:
    """Answer one question from the whole knowledge base (the terminal is trusted: it
    reads the store directly); returns `{"question", "answer", "search_type", "notice",
    "sources"}`."""
    from chains.rag import build_rag_chain, rag_input
    from chains.retriever import PassageRetriever, Retrieval
    from chains.safety import sanitize_markdown
    from core.resources import opened

    async with opened(settings) as resources:
        chain = build_rag_chain(PassageRetriever(searcher=resources.searcher), resources.chat_model)
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
        section = f" › {s['section']}" if s["section"] else ""
        page = f", page {s['page']}" if s["page"] is not None else ""
        score = f" (score {s['score']:.2f})" if s["score"] is not None else ""
        lines.append(f"  [{s['n']}] {s['source']}{section}{page}{score}")
    if result["notice"]:
        lines += ["", result["notice"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()
    try:
        settings = settings_from(args)
        options = options_from(args, search_type=args.search_type, sources=tuple(args.source))
    except (UserFacingError, ValueError) as exc:  # settings and option validation
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    from chains.errors import explain

    try:
        result = asyncio.run(ask(settings, args.question, options))
    except Exception as exc:
        print(f"error: {explain(exc)}", file=sys.stderr)
        return EXIT_ERROR
    print(json.dumps(result, ensure_ascii=False) if args.json else render_text(result), file=out)
    return EXIT_OK
