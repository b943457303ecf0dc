"""Translating failures on the question path into messages for the person asking."""

from __future__ import annotations

import logging

from core.errors import UserFacingError
from core.providers import model_failure

logger = logging.getLogger(__name__)


def explain(exc: BaseException, *, operator: bool = False) -> UserFacingError:
    """A user-facing error for `exc`; unexpected errors are logged and described vaguely.

    The knowledge base already turns store failures into `StoreUnavailable`, and the
    model provider's failures are recognised by `core.providers.model_failure`. A chat
    user gets an error's `public` wording (never an internal address or a command to
    run; the details go to the log); `operator=True` (the command-line tools, start-up
    logs) keeps the details.
    """
    if isinstance(exc, UserFacingError):
        if exc.public is None or operator:
            return exc
        logger.warning("%s", exc)
        return UserFacingError(exc.public)
    if (failure := model_failure(exc)) is not None:
        return failure
    logger.error("unexpected failure while answering", exc_info=exc)
    return UserFacingError("Something went wrong while answering. The error has been logged.")
