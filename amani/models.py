"""No models: API clients and keys moved to the access app (issue 16), their tables kept.

The module stays so that Django sends this app `post_migrate` (it skips an app without a
models module), on which amani.database_roles re-grants the service role's privileges.
"""
