"""A generated corpus of plain-text files (deterministic), for ingest benchmarks."""

from __future__ import annotations

import random
from pathlib import Path

WORDS = (
    "vector database embedding retrieval chunk index search query answer model passage "
    "citation milvus latency throughput batch async event loop concurrency user document "
    "page source metadata filter score similarity diversity relevance ingest upload stream "
    "token prompt context history memory cluster segment flush collection schema field"
).split()


def generate(folder: Path, megabytes: float, file_kb: int = 50, seed: int = 7) -> list[Path]:
    """Write about `megabytes` of sentence-shaped text in files of `file_kb` KB."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(max(1, int(megabytes * 1024 / file_kb))):
        sentences, size = [], 0
        while size < file_kb * 1024:
            sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20)))
            sentence = sentence.capitalize() + ". "
            sentences.append(sentence)
            size += len(sentence)
            if rng.random() < 0.1:
                sentences.append("\n\n")
        path = folder / f"doc-{number:04d}.txt"
        path.write_text("".join(sentences), encoding="utf-8")
        paths.append(path)
    return paths
