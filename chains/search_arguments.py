"""The options both command-line tools take (`python -m chains`, `python -m
chains.evaluate`): the collection and the search settings, with `SearchOptions`' own
defaults and bounds."""

from __future__ import annotations

import argparse
from typing import Any, get_args

from chains.options import SearchOptions
from core.knowledge import Fusion, RerankMode
from core.settings import Settings, load_settings

_DEFAULTS = {name: field.default for name, field in SearchOptions.model_fields.items()}


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    """`--collection`, `--k`, `--fetch-k`, `--lambda-mult`, `--fusion`, `--keyword-weight`,
    `--rerank`."""
    parser.add_argument("--collection", help="collection name (default: MILVUS_COLLECTION)")
    parser.add_argument(
        "--k", type=int, default=_DEFAULTS["k"], help="passages to retrieve (default %(default)s)"
    )
    parser.add_argument(
        "--fetch-k",
        type=int,
        default=_DEFAULTS["fetch_k"],
        help="MMR candidates (default %(default)s)",
    )
    parser.add_argument(
        "--lambda-mult",
        type=float,
        default=_DEFAULTS["lambda_mult"],
        help="MMR diversity 0..1 (default %(default)s)",
    )
    parser.add_argument(
        "--fusion",
        choices=get_args(Fusion),
        default=_DEFAULTS["fusion"],
        help="how hybrid search combines its keyword and dense routes: relative scores or "
        "reciprocal ranks (default %(default)s)",
    )
    parser.add_argument(
        "--keyword-weight",
        type=float,
        default=_DEFAULTS["keyword_weight"],
        help="the keyword route's weight in the hybrid fusion, the dense route's being 1 "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--rerank",
        choices=get_args(RerankMode),
        default=_DEFAULTS["rerank"],
        help="rerank up to 20 candidates (fetch_k) with a local cross-encoder "
        "(RERANKER_MODEL) or the chat model (default %(default)s)",
    )


def settings_from(args: argparse.Namespace) -> Settings:
    """The settings, with `--collection` over MILVUS_COLLECTION (raises `ConfigError`)."""
    return load_settings(**({"milvus_collection": args.collection} if args.collection else {}))


def options_from(args: argparse.Namespace, **more: Any) -> SearchOptions:
    """Validated search options from the arguments (raises `ValueError` when out of bounds)."""
    return SearchOptions(
        k=args.k,
        fetch_k=args.fetch_k,
        lambda_mult=args.lambda_mult,
        fusion=args.fusion,
        keyword_weight=args.keyword_weight,
        rerank=args.rerank,
        **more,
    )
