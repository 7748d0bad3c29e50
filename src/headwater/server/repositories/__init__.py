"""Repositories: the server's SQL, one module per aggregate (SQLAlchemy Core).

Every function takes an open `Connection`, is keyword-only past it, and never
commits: the route that calls it owns the transaction.
"""
