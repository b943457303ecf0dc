"""Chainlit presentation helpers: shared resources, chat settings, elements, streaming.

`app.py` holds only the Chainlit hooks; what they show is built here.
"""
