"""The app's process-wide state: settings and the services every chat shares.

Opened by Chainlit's start-up hook (`start`), closed by its shutdown hook (`stop`), and
kept on the FastAPI application's `state` (Chainlit's server app), not in a module
global. If opening fails at start-up (the store is down, say), the first chat tries
again and tells its user what is wrong.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass

from chainlit.config import config as chainlit_config
from chainlit.server import app as server_app
from chainlit.server import sio

from accounts.database import Database
from accounts.service import Accounts
from chains.errors import explain
from chains.model_budget import ModelLimits
from chains.rag import RagChain, build_rag_chain
from chains.retriever import PassageRetriever
from core.process_gc import freeze_start_up
from core.resources import Resources, open_resources
from core.settings import Settings
from ingest.limits import MIB
from ingest.pipeline import IngestOptions, Ingestor
from ui.abuse import AbuseLimits, guard_socket_messages
from ui.auth import install_feedback_guard
from ui.health import HealthChecks, install_health_route
from ui.upload_limits import UploadQuota, install_upload_storage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChatServices:
    """What answering and uploading need: the resources, the chain, the one ingestor
    (shared, so upload concurrency is bounded for the whole process) and the per-user
    abuse limits (shared by all of a user's chats)."""

    resources: Resources
    chain: RagChain
    ingestor: Ingestor
    limits: AbuseLimits

    @classmethod
    def build(cls, resources: Resources) -> ChatServices:
        retriever = PassageRetriever(searcher=resources.searcher)
        return cls(
            resources=resources,
            chain=build_rag_chain(
                retriever, resources.chat_model, ModelLimits.from_settings(resources.settings)
            ),
            ingestor=Ingestor(resources.kb, IngestOptions.from_settings(resources.settings)),
            limits=AbuseLimits.from_settings(resources.settings),
        )


class AppRuntime:
    """Opens the services once (again after a failure) and closes them at shutdown.

    The chat-history database is opened (and migrated) before, by `start`: without it
    nobody can sign in, so it is not retried.
    """

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database
        self.accounts = Accounts(database)
        self._services: ChatServices | None = None
        self._lock = asyncio.Lock()

    async def services(self) -> ChatServices:
        """The shared services, opened on first use; raises what opening raised."""
        if self._services is not None:
            return self._services
        async with self._lock:
            if self._services is None:
                self._services = ChatServices.build(await open_resources(self.settings))
        return self._services

    @property
    def opened(self) -> ChatServices | None:
        """The services if they are open (never opens them)."""
        return self._services

    async def close(self) -> None:
        if self._services is not None:
            await self._services.resources.close()
            self._services = None
        await self.database.close()


def configure_uploads(settings: Settings) -> None:
    """Upload limits come from the settings (MAX_FILE_MB, MAX_UPLOAD_FILES), so the browser,
    Chainlit's upload endpoint (its body, while it streams: `ui.upload_limits`) and the
    ingest pipeline all enforce the same numbers; uploads waiting to be sent are capped
    per chat and per user, in a files directory of this process's own."""
    upload = chainlit_config.features.spontaneous_file_upload
    if upload is not None:
        upload.max_size_mb = math.ceil(settings.max_file_mb)
        upload.max_files = settings.max_upload_files
    quota = UploadQuota(
        per_session=int(settings.max_session_upload_mb * MIB),
        per_user=int(settings.max_user_upload_mb * MIB),
    )
    install_upload_storage(quota)


async def start(settings: Settings) -> AppRuntime:
    """Configure uploads and the socket's message limit, migrate the chat-history
    database, guard the feedback routes, serve `/readyz`, keep the runtime on the server
    app, and open the services now (loading the embedding model before the first visitor
    arrives), then keep what start-up built out of the garbage collector's sight
    (`core.process_gc`). Raises if the database cannot be opened."""
    configure_uploads(settings)
    guard_socket_messages(sio, settings.max_message_chars)
    database = await Database.open(settings)
    install_feedback_guard(server_app, database)
    runtime = AppRuntime(settings, database)
    install_health_route(server_app, HealthChecks(runtime))
    server_app.state.rag_chat = runtime
    try:
        await runtime.services()
    except Exception as exc:  # shown again, to the user, when a chat starts
        logger.error(
            "start-up failed (will retry when a chat starts): %s", explain(exc, operator=True)
        )
    freeze_start_up()
    return runtime


def current() -> AppRuntime:
    """The runtime `start` installed."""
    runtime = getattr(server_app.state, "rag_chat", None)
    if not isinstance(runtime, AppRuntime):
        raise RuntimeError("the app has not started (Chainlit's start-up hook did not run)")
    return runtime


async def stop() -> None:
    runtime = getattr(server_app.state, "rag_chat", None)
    if isinstance(runtime, AppRuntime):
        await runtime.close()
