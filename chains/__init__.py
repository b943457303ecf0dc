"""Retrieval and generation: the async retriever, prompts, the LCEL RAG chain, the ask CLI."""
