"""What the tests of every app share: importable helpers (fixtures live in the root conftest.py).

roles: the service's database role; servers: a real gunicorn; clients: a signed in-process client;
races: threads released together; contract: the live-server client the HTTP contract tests use.
"""
