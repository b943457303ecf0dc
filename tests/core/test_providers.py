import pytest
from langchain_openai import ChatOpenAI, OpenAIEmbeddings

from core.batched_embeddings import CoalescingEmbeddings
from core.errors import ModelUnavailable
from core.onnx_embeddings import OnnxEmbeddings
from core.providers import ExplainedEmbeddings, build_chat_model, build_embeddings
from core.settings import Settings
from tests.openai_standin import OpenAIStandIn


def test_no_chat_model_without_key_or_url() -> None:
    assert build_chat_model(Settings(_env_file=None)) is None


def test_chat_model_gets_explicit_timeouts_and_leaves_retries_to_the_budget() -> None:
    settings = Settings(
        _env_file=None,
        openai_api_key="sk-test",
        openai_max_retries=1,
        model_connect_timeout=2,
        model_first_token_timeout=9,
        model_stall_timeout=4,
    )
    model = build_chat_model(settings)
    assert isinstance(model, ChatOpenAI)
    timeout = model.request_timeout
    assert (timeout.connect, timeout.read) == (2, 14)  # type: ignore[union-attr]
    assert model.max_retries == 0  # the answer's budget retries (chains.model_budget)
    assert model.streaming


def test_compatible_server_gets_base_url_and_a_placeholder_key() -> None:
    settings = Settings(_env_file=None, openai_base_url="http://127.0.0.1:9/v1", llm_model="m")
    model = build_chat_model(settings)
    assert isinstance(model, ChatOpenAI)
    assert model.openai_api_base == "http://127.0.0.1:9/v1"
    assert model.model_name == "m"


def test_openai_embeddings_get_the_same_client_limits() -> None:
    settings = Settings(
        _env_file=None, openai_api_key="sk-test", openai_timeout=5, openai_max_retries=0
    )
    embeddings = build_embeddings(settings)
    assert isinstance(embeddings, CoalescingEmbeddings)
    explained = embeddings.inner
    assert isinstance(explained, ExplainedEmbeddings)
    embeddings = explained.inner
    assert isinstance(embeddings, OpenAIEmbeddings)
    assert embeddings.request_timeout == 5
    assert embeddings.max_retries == 0
    assert embeddings.model == "text-embedding-3-small"


@pytest.mark.integration
def test_local_embeddings_run_in_onnx_runtime_with_the_configured_batch_size() -> None:
    embeddings = build_embeddings(
        Settings(_env_file=None, embeddings="local", embedding_batch_size=7)
    )
    assert isinstance(embeddings, CoalescingEmbeddings)
    assert isinstance(embeddings.inner, OnnxEmbeddings)
    assert embeddings.inner.batch_size == 7


async def test_an_embedding_service_failure_says_which_service_failed(
    openai_standin: OpenAIStandIn,
) -> None:
    """It read "the language model returned an error (HTTP 404)" in the chat."""
    settings = Settings(
        _env_file=None,
        openai_base_url=openai_standin.base_url,
        embeddings="openai",
        embedding_model="nomic-embed",
        openai_max_retries=0,
    )
    embeddings = build_embeddings(settings)
    for call in (embeddings.aembed_query("q"), embeddings.aembed_documents(["a", "b"])):
        with pytest.raises(ModelUnavailable) as info:
            await call
        assert str(info.value).startswith("The embedding service has no model 'nomic-embed'")
        assert info.value.public == "The embedding model is not available: tell the administrator."
    with pytest.raises(ModelUnavailable, match="has no model"):
        embeddings.embed_query("q")


async def test_an_unreachable_embedding_service_is_named_without_its_address() -> None:
    settings = Settings(
        _env_file=None,
        openai_base_url="http://127.0.0.1:9/v1",
        embeddings="openai",
        openai_max_retries=0,
    )
    with pytest.raises(ModelUnavailable) as info:
        await build_embeddings(settings).aembed_query("q")
    assert "could not be reached" in str(info.value) and "OPENAI_BASE_URL" in str(info.value)
    assert info.value.public is not None and "127.0.0.1" not in info.value.public
