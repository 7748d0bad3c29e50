"""Pydantic wire models: one copy, shared by the HTTP client and the server.

Nothing on the SDK's import path imports this package (pydantic costs time
to import); the client loads it only when a run talks to a server.
"""
