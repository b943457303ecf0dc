"""One typed settings object, read from the environment and `.env`.

Build it once at start-up with `load_settings()` and pass it (or the parts a component
needs) down; tests construct `Settings(...)` directly.

>>> s = Settings(_env_file=None, milvus_lite_path="/tmp/kb.db")
>>> s.embedding_provider, s.uses_milvus_lite
('local', True)
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import ConfigError
from core.redaction import redact_credentials

LOCAL_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
DEFAULT_OPENAI_EMBEDDING_MODEL = "text-embedding-3-small"


class Settings(BaseSettings):
    """Everything configurable, with the embedded defaults of a laptop with no keys."""

    model_config = SettingsConfigDict(
        env_file=".env", env_ignore_empty=True, extra="ignore", frozen=True
    )

    # Vector store
    milvus_uri: str | None = Field(
        default=None, description="A Milvus server, http(s)://host:port; unset: Milvus Lite."
    )
    milvus_lite_path: Path = Field(
        default=Path("data/milvus.db"), description="Milvus Lite data path (MILVUS_URI unset)."
    )
    milvus_token: SecretStr | None = None
    milvus_collection: str = Field(default="docs", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
    milvus_timeout: float = Field(default=30.0, gt=0)

    # Models
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_temperature: float = Field(default=0.0, ge=0, le=2)
    openai_timeout: float = Field(default=60.0, gt=0, description="Seconds per OpenAI request.")
    openai_max_retries: int = Field(default=2, ge=0, le=10)
    # The chat model's time budget (chains/model_budget.py): a hung or stalled model costs
    # seconds, then the answer falls back to the retrieved passages.
    model_connect_timeout: float = Field(
        default=5.0, gt=0, description="Seconds to open a connection to the chat model."
    )
    model_first_token_timeout: float = Field(
        default=15.0, gt=0, description="Seconds from a request to the model's first token."
    )
    model_stall_timeout: float = Field(
        default=15.0, gt=0, description="Longest gap between two tokens before an answer is cut."
    )
    model_answer_budget: float = Field(
        default=30.0,
        gt=0,
        description="Seconds for all the model's attempts for one answer together (the "
        "follow-up rewrite, the answer and their retries).",
    )
    embeddings: Literal["local", "openai"] | None = None
    embedding_model: str | None = None
    embedding_batch_size: int = Field(default=64, ge=1, le=2048)
    reranker_model: Path | None = Field(
        default=None,
        description="A local cross-encoder folder (tokenizer.json, model.onnx) for the "
        "optional reranking; none ships with the app.",
    )

    # Ingest
    chunk_size: int = Field(default=1000, ge=100, le=20000)
    chunk_overlap: int = Field(default=150, ge=0)
    ingest_batch_size: int = Field(default=64, ge=1, le=10000)
    ingest_concurrency: int = Field(default=2, ge=1, le=64)
    max_file_mb: float = Field(default=20.0, gt=0, le=500)
    max_upload_files: int = Field(default=10, ge=1, le=100)
    max_session_upload_mb: float = Field(
        default=100.0, gt=0, description="Uploaded bytes one chat may hold before ingest."
    )
    max_user_upload_mb: float = Field(
        default=200.0, gt=0, description="Uploaded bytes one user may hold across their chats."
    )
    max_document_chars: int = Field(default=2_000_000, ge=1000)
    max_chunks_per_document: int = Field(default=3000, ge=1)
    parse_cpu_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="CPU time to parse one file (a worker process)."
    )
    parse_memory_mb: int = Field(default=1024, ge=128, description="Memory to parse one file.")
    sample_corpus: Path = Path("data/sample")

    # Abuse limits (per signed-in user; anonymous visitors share one budget)
    messages_per_minute: int = Field(default=20, ge=1)
    model_requests_per_minute: int = Field(
        default=30, ge=1, description="Chat-model requests one user may cause per minute."
    )
    max_message_chars: int = Field(default=20_000, ge=100)

    # Users and chat history
    database_url: SecretStr = Field(
        default=SecretStr("sqlite+aiosqlite:///data/chat.db"),
        description="Chat history and users: sqlite+aiosqlite:///PATH or "
        "postgresql+asyncpg://USER:PASSWORD@HOST/DB (secret: it may hold a password).",
    )
    auth_secret_file: Path = Field(
        default=Path("data/auth-secret"),
        description="Where the generated CHAINLIT_AUTH_SECRET is kept when the variable is unset.",
    )
    auth_header: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9-]{1,64}$",
        description="Trust this request header as the signed-in user name (only behind a proxy "
        "that authenticates and strips it from clients); unset: password sign-in only.",
    )

    @field_validator("milvus_uri")
    @classmethod
    def _server_uri_only(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            shown = redact_credentials(value)
            raise ValueError(
                f"MILVUS_URI must be a Milvus server address such as http://127.0.0.1:19530, "
                f"got {shown!r}. For a local Milvus Lite file, unset MILVUS_URI and set "
                f"MILVUS_LITE_PATH={shown} instead."
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: SecretStr) -> SecretStr:
        scheme = urlparse(value.get_secret_value()).scheme
        if scheme not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
            raise ValueError(
                "DATABASE_URL must start with sqlite+aiosqlite:/// or postgresql+asyncpg://, "
                f"got a {scheme or 'bare'!r} URL"
            )
        return value

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("CHUNK_OVERLAP must be smaller than CHUNK_SIZE")
        if self.embeddings == "openai" and self.openai_api_key is None and not self.openai_base_url:
            raise ValueError("EMBEDDINGS=openai needs OPENAI_API_KEY or OPENAI_BASE_URL")
        return self

    @property
    def uses_milvus_lite(self) -> bool:
        return self.milvus_uri is None

    @property
    def embedding_provider(self) -> Literal["local", "openai"]:
        if self.embeddings is not None:
            return self.embeddings
        return "openai" if self.openai_api_key is not None else "local"

    @property
    def embedding_model_name(self) -> str:
        if self.embedding_model:
            return self.embedding_model
        if self.embedding_provider == "local":
            return LOCAL_EMBEDDING_MODEL
        return DEFAULT_OPENAI_EMBEDDING_MODEL

    @property
    def chat_model_configured(self) -> bool:
        """A chat model is used when an OpenAI key or an OpenAI-compatible URL is set."""
        return bool(self.llm_model) and (
            self.openai_api_key is not None or bool(self.openai_base_url)
        )

    @property
    def milvus_address(self) -> str:
        """Where the store lives, for messages and logs (never includes the token)."""
        if self.milvus_uri is not None:
            parsed = urlparse(self.milvus_uri)
            return f"{parsed.scheme}://{parsed.hostname}:{parsed.port or 19530}"
        return str(self.milvus_lite_path)


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment and `.env`, turning validation errors into
    one readable `ConfigError`."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper() or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"Invalid configuration: {problems}") from None
