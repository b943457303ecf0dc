"""Shared core: settings, model providers, resources, the knowledge-base protocol and its
one Milvus implementation (`core.store`), search fusion, and user-facing errors.

Nothing here imports pymilvus at module import time except `core.store`, because
pymilvus validates the `MILVUS_URI` environment variable when it is imported: settings
must be validated first so that a bad value gets our message, not a pymilvus traceback.
"""
