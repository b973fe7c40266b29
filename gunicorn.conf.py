"""gunicorn configuration, from the environment: `gunicorn amani.wsgi:application -c gunicorn.conf.py`.

Sync workers, one thread each: every request holds one database connection for its
duration and no more, and a slow request cannot stall others in the same worker.
Access lines come from the application (amani.logging, JSON with the request id),
so gunicorn's own access log is off.

| variable                  | default                 |
|---------------------------|-------------------------|
| GUNICORN_BIND             | 127.0.0.1:8000          |
| WEB_CONCURRENCY           | 2 x CPU cores + 1, <= 8 |
| GUNICORN_TIMEOUT          | 30 (seconds)            |
| GUNICORN_GRACEFUL_TIMEOUT | 30 (seconds)            |
| GUNICORN_KEEPALIVE        | 5 (seconds)             |
| GUNICORN_MAX_REQUESTS     | 10000 (0: never recycle)|
| FORWARDED_ALLOW_IPS       | 127.0.0.1               |
| LOG_LEVEL                 | INFO                    |
"""

import multiprocessing
import os

# gunicorn reads this file itself, before Django's settings exist: the environment is read here.
_env = os.environ

bind = _env.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(_env.get("WEB_CONCURRENCY", min(2 * multiprocessing.cpu_count() + 1, 8)))
worker_class = "sync"
threads = 1
timeout = int(_env.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(_env.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = int(_env.get("GUNICORN_KEEPALIVE", "5"))
# Recycle workers now and then (jittered so they do not all restart at once).
max_requests = int(_env.get("GUNICORN_MAX_REQUESTS", "10000"))
max_requests_jitter = max_requests // 10
# The load balancer terminates TLS; trust its X-Forwarded-* headers only from these addresses.
forwarded_allow_ips = _env.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Heartbeat files on tmpfs: a worker blocked on a slow disk is not killed as hung.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108

accesslog = None
errorlog = "-"
loglevel = _env.get("LOG_LEVEL", "INFO").lower()
proc_name = "amani"

# --- Prometheus multiprocess hooks (added by the metrics work) -------------------------
