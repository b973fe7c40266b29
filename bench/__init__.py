"""`make bench`: the service measured against raw PostgreSQL on the same machine."""
