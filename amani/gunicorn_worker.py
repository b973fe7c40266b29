"""gunicorn's threaded worker, accepting a connection only while one of its threads is free.

gthread serves keep-alive connections (the sync worker closes after every response) and
lets one worker go on serving while a thread waits on a slow client. Its main loop accepts
connections whether or not a thread is free, though, and queues them behind busy threads:
as many stalled clients as there are threads in one worker would hold up every request that
worker accepted next. Here a worker with every thread busy stops accepting, so the kernel
hands new connections to a worker that can serve them now (issue 17: four stalled bodies
used to stop `/healthz` for 33.8 s).

gthread never kills a worker for a slow client, and reads a request's headers with no
timeout of its own: a client that sends half a request line and stops would hold a thread
for as long as it keeps the connection open. Here every read of a connection's socket
waits at most `timeout` (GUNICORN_TIMEOUT) for data (SO_RCVTIMEO, which blocking reads
obey); then the connection closes. Bodies have their own deadline (amani.middleware).

It also lets the application close a connection after its answer: a 413 leaves the body
unread on the socket, and a response announcing keep-alive would make the client send its
next request on a connection gunicorn then closes (`amani.middleware.connection_close`).

The bookkeeping runs on the worker's main thread only (accept, the poller's callbacks and
finish_request are all called there), so it needs no lock.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

from gunicorn.workers import gthread


class ThreadWorker(gthread.ThreadWorker):
    def init_process(self) -> None:
        self.busy_threads = 0
        super().init_process()

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled and self.busy_threads < self.cfg.threads)

    def enqueue_req(self, conn: Any) -> None:
        if not conn.initialized:  # a new connection
            seconds = max(int(self.cfg.timeout), 1)
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", seconds, 0))
        self.busy_threads += 1
        super().enqueue_req(conn)
        if self.busy_threads >= self.cfg.threads:
            self.set_accept_enabled(False)

    def finish_request(self, conn: Any, fs: Any) -> None:
        self.busy_threads -= 1
        super().finish_request(conn, fs)
        if self.alive and self.nr_conns < self.worker_connections:
            self.set_accept_enabled(True)

    def handle_request(self, req: Any, conn: Any) -> bool:
        if req.body is not None:
            req.body.http_message = req  # wsgi.input is req.body: connection_close reaches the request here
        return super().handle_request(req, conn)
