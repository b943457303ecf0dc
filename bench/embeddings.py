"""Local embeddings: PyTorch (sentence-transformers, the app's path before) against ONNX
Runtime (the app's path now), and ONNX Runtime on a dynamically quantized int8 model (not
used by the app: its vectors differ).

python -m bench.embeddings [--runs 5] [--chunks 256]

Each runtime runs alone in a fresh process (`bench.embedding_worker`), so that import time
and memory are its own. Needs the dev install: PyTorch and sentence-transformers for the
comparison, onnx for the quantization.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from bench.common import command_line, scratch, table, versions
from bench.corpus import WORDS, generate
from core.onnx_model import ModelFiles, default_model_files
from core.settings import Settings

QUESTION = "How does maximal marginal relevance differ from plain similarity search?"


def make_texts(folder: Path, chunks: int, runs: int) -> dict[str, object]:
    """One question, 50 varied questions, `chunks` 1,000-character chunks of the
    generated corpus, and the texts whose vectors are compared."""
    rng = random.Random(11)
    questions = [
        f"How does the {rng.choice(WORDS)} {rng.choice(WORDS)} affect "
        f"{' '.join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))}?"
        for _ in range(50)
    ]
    corpus = "".join(p.read_text() for p in generate(folder / "corpus", chunks / 1024 + 0.05))
    pieces = [corpus[start : start + 1000] for start in range(0, chunks * 1000, 1000)]
    return {
        "runs": runs,
        "batch_size": Settings.model_fields["embedding_batch_size"].default,
        "question": QUESTION,
        "questions": questions,
        "chunks": pieces,
        "compare": [QUESTION, *questions, *pieces[:50]],
    }


def quantize(source: ModelFiles, folder: Path, per_channel: bool = False) -> ModelFiles:
    """A dynamic int8 copy of `source` (QInt8 weights), one scale per weight tensor or,
    with `per_channel`, one per output channel."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = ModelFiles(folder / ("int8-per-channel" if per_channel else "int8"))
    target.directory.mkdir()
    quantize_dynamic(
        source.model, target.model, weight_type=QuantType.QInt8, per_channel=per_channel
    )
    shutil.copy(source.tokenizer, target.tokenizer)
    return target


def measure(folder: Path, label: str, onnx: ModelFiles | None) -> dict[str, float]:
    extra = ["--onnx", str(onnx.directory)] if onnx else []
    subprocess.run(
        [sys.executable, "-m", "bench.embedding_worker", str(folder), label, *extra], check=True
    )
    result: dict[str, float] = json.loads((folder / f"{label}.json").read_text())
    return result


def cosines(vectors: np.ndarray, reference: np.ndarray) -> np.ndarray:
    cos: np.ndarray = (vectors * reference).sum(axis=1) / (
        np.linalg.norm(vectors, axis=1) * np.linalg.norm(reference, axis=1)
    )
    return cos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="best of this many (default 5)")
    parser.add_argument("--chunks", type=int, default=256, help="1,000-character chunks")
    args = parser.parse_args()
    with scratch("bench-embeddings-") as folder:
        texts = make_texts(folder, args.chunks, args.runs)
        (folder / "texts.json").write_text(json.dumps(texts))
        runtimes = {
            "pytorch": None,
            "onnx": default_model_files(),
            "onnx-int8": quantize(default_model_files(), folder),
        }
        results = {label: measure(folder, label, files) for label, files in runtimes.items()}
        reference = np.load(folder / "pytorch.npy")
        similarity = {
            label: cosines(np.load(folder / f"{label}.npy"), reference) for label in runtimes
        }

    def row(what: str, cell: str) -> list[str]:
        return [what, *(cell.format(**results[label]) for label in runtimes)]

    rows = [
        row("one question embedded", "{one_ms:.1f} ms"),
        row("50 questions in one batch", "{questions_ms:.0f} ms"),
        row(
            f"1,000-character chunks per second (batches of {texts['batch_size']})",
            "{chunks_per_s:.0f}",
        ),
        [
            f"vectors vs PyTorch: mean (min) cosine, {len(reference)} texts",
            *(f"{s.mean():.4f} ({s.min():.4f})" for s in similarity.values()),
        ],
        row("import of the runtime", "{import_s:.2f} s"),
        row("import + load + first question", "{ready_s:.2f} s, {ready_rss_mb:.0f} MB RSS"),
        row("peak RSS after all of the above", "{peak_rss_mb:.0f} MB"),
    ]
    print(f"`{command_line()}`: {args.chunks} chunks, best of {args.runs} runs each")
    print(
        versions()
        + ", "
        + ", ".join(
            f"{n} {importlib.metadata.version(n)}" for n in ("torch", "sentence-transformers")
        )
    )
    print()
    headers = [
        "measured",
        "PyTorch (sentence-transformers)",
        "ONNX Runtime, float32 (the app)",
        "ONNX Runtime, dynamic int8",
    ]
    print(table(headers, rows))


if __name__ == "__main__":
    main()
