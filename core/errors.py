"""The small vocabulary of errors whose messages are written for the person using the app.

Only these reach the chat or the terminal as they are; anything else is logged and
replaced by a generic message.
"""


class UserFacingError(Exception):
    """An error whose message is safe and useful to show to the user.

    `public`, when given, is what a chat user is told instead: the message itself is for
    the operator (an address, a command to run) and goes to the log and the terminal.
    """

    def __init__(self, message: str, *, public: str | None = None) -> None:
        super().__init__(message)
        self.public = public


class ConfigError(UserFacingError):
    """The configuration (environment, `.env`) is invalid."""


class StoreUnavailable(UserFacingError):
    """The vector store cannot be reached or opened."""


STORE_UNREACHABLE = (
    "The knowledge base is unreachable right now. Try again shortly; if it keeps "
    "happening, tell the administrator."
)


class StoreLocked(StoreUnavailable):
    """Another process holds the Milvus Lite data directory."""


class EmbeddingMismatch(UserFacingError):
    """The collection was built with another embedding model or dimension."""


class ModelUnavailable(UserFacingError):
    """The chat model or the embedding service failed or timed out."""


class UnreadableFile(UserFacingError):
    """A file cannot be ingested: empty, corrupt, encrypted, binary or unsupported."""


class StoreWriteFailed(UserFacingError):
    """Writing a file's chunks failed; what was written of them has been removed."""


class SchemaOutdated(UserFacingError):
    """The collection was made with an older (or newer) layout than this app uses."""


class UnsupportedValue(UserFacingError):
    """A value (a document name, a filter) holds characters the store cannot search for."""
