"""Translating failures on the question path into messages for the person asking."""

from __future__ import annotations

import logging

import openai
from pymilvus import MilvusException

from core.errors import ModelUnavailable, StoreUnavailable, UserFacingError

logger = logging.getLogger(__name__)


def explain(exc: BaseException) -> UserFacingError:
    """A user-facing error for `exc`; unexpected errors are logged and described vaguely."""
    if isinstance(exc, UserFacingError):
        return exc
    if isinstance(exc, openai.APITimeoutError):
        return ModelUnavailable(
            "The language model did not answer in time. Please try again in a moment."
        )
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
    if isinstance(exc, MilvusException | TimeoutError | ConnectionError):
        logger.warning("vector store failure: %r", exc)
        return StoreUnavailable(
            "The knowledge base could not be searched right now (Milvus is unreachable or "
            "timed out). Try again in a moment."
        )
    logger.error("unexpected failure while answering", exc_info=exc)
    return UserFacingError("Something went wrong while answering. The error has been logged.")
