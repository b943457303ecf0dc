"""Where the ONNX export of the local embedding model lives.

Standard library only: `core.onnx_export` imports this in a throwaway environment that has
PyTorch but none of this project's dependencies (see `scripts/setup.sh`).

>>> files = ModelFiles(Path("/models/minilm"))
>>> files.model.name, files.tokenizer.name
('model.onnx', 'tokenizer.json')
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "sentence_embedding"


@dataclass(frozen=True)
class ModelFiles:
    """An exported model: the ONNX graph (token ids in, normalized sentence embeddings
    out) and the tokenizer with the truncation and padding the graph expects."""

    directory: Path

    @property
    def model(self) -> Path:
        return self.directory / "model.onnx"

    @property
    def tokenizer(self) -> Path:
        return self.directory / "tokenizer.json"

    def exist(self) -> bool:
        return self.model.is_file() and self.tokenizer.is_file()


def default_model_files() -> ModelFiles:
    """Inside the Python environment (the venv), not the working directory: the export
    lives and dies with the installed packages, and every command finds it wherever it
    runs from. Nothing there is ever committed."""
    return ModelFiles(Path(sys.prefix) / "share" / "rag-chat" / "all-MiniLM-L6-v2-onnx")
