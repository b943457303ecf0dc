"""Loading files into the knowledge base: the `python -m ingest` CLI and the function the
chat's upload handler calls (`Ingestor.ingest_file`)."""
