"""gunicorn configuration, from the environment: `gunicorn amani.wsgi:application -c gunicorn.conf.py`.

Threaded workers (amani.gunicorn_worker: gthread accepting only while a thread is free),
keep-alive on: callers are backend services that hold connections open, which sync
workers cannot serve (they close after every response). A client slow to send its body
holds one thread, for API_BODY_READ_TIMEOUT_SECONDS at most (amani.middleware), never a
whole worker; in production a buffering proxy in front sends complete requests only
(docs/security.md). Each thread holds its own database connection: at most
WEB_CONCURRENCY x GUNICORN_THREADS per server (docs/scaling.md for PgBouncer).
Access lines come from the application (amani.logging, JSON with the request id),
so gunicorn's own access log is off.

| variable                  | default                 |
|---------------------------|-------------------------|
| GUNICORN_BIND             | 127.0.0.1:8000          |
| WEB_CONCURRENCY           | 2 x CPU cores + 1, <= 8 |
| GUNICORN_THREADS          | 4 (per worker)          |
| GUNICORN_TIMEOUT          | 30 (seconds; also the longest wait for a read of a request's headers) |
| GUNICORN_GRACEFUL_TIMEOUT | 30 (seconds)            |
| GUNICORN_KEEPALIVE        | 5 (seconds; idle kept-alive connection) |
| GUNICORN_MAX_REQUESTS     | 10000 (0: never recycle)|
| FORWARDED_ALLOW_IPS       | 127.0.0.1               |
| GUNICORN_CONTROL_SOCKET   | none (control socket off)|
| LOG_LEVEL                 | INFO                    |
"""

import multiprocessing
import os

# gunicorn reads this file itself, before Django's settings exist: the environment is read here.
_env = os.environ

bind = _env.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(_env.get("WEB_CONCURRENCY", min(2 * multiprocessing.cpu_count() + 1, 8)))
worker_class = "amani.gunicorn_worker.ThreadWorker"
threads = int(_env.get("GUNICORN_THREADS", "4"))
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

# gunicorn's control socket defaults to one path per user (~/.gunicorn/gunicorn.ctl), which
# several servers on one machine (CI smoke next to `make run`) would fight over; unused here.
control_socket_disable = _env.get("GUNICORN_CONTROL_SOCKET", "") == ""
if not control_socket_disable:
    control_socket = _env["GUNICORN_CONTROL_SOCKET"]

accesslog = None
errorlog = "-"
loglevel = _env.get("LOG_LEVEL", "INFO").lower()
proc_name = "amani"

# --- Prometheus multiprocess hooks (added by the metrics work) -------------------------
# prometheus-client's multiprocess mode: every worker writes its samples to files in
# PROMETHEUS_MULTIPROC_DIR and /metrics adds up all of them (amani.metrics). The variable
# must be set before a worker imports prometheus_client, hence here, in the master, at load.
_created_metrics_dir = None
if not _env.get("PROMETHEUS_MULTIPROC_DIR"):
    import tempfile

    _created_metrics_dir = tempfile.mkdtemp(prefix="amani-prometheus-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _created_metrics_dir


def on_starting(server):
    """A fresh directory per start: files left by an earlier run would be counted again."""
    import pathlib

    path = pathlib.Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def child_exit(server, worker):
    """A dead worker's live gauges stop counting; its counters and histograms stay summed."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _created_metrics_dir:
        import shutil

        shutil.rmtree(_created_metrics_dir, ignore_errors=True)
