"""Shared core: settings, model providers, the Milvus store factory and user-facing errors.

Nothing here imports pymilvus at module import time except `core.store`, because
pymilvus validates the `MILVUS_URI` environment variable when it is imported: settings
must be validated first so that a bad value gets our message, not a pymilvus traceback.
"""
