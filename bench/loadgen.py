"""Load generators: HTTP over raw keep-alive sockets, and raw psycopg.

Every worker is its own process (fork), builds and signs all of its requests before
the start barrier, then only writes prepared bytes and reads responses, so the
generator's share of the two cores stays small; each worker reports the CPU time it
used inside the measured loop so the report can show it.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import socket
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from amani import signing

# (method, path, query, body) for one HTTP request.
RequestSpec = tuple[str, str, str, bytes]
_CTX = mp.get_context("fork")


@dataclass
class WorkerResult:
    count: int = 0
    statuses: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0
    cpu_seconds: float = 0.0
    # raw phases: CPU of this worker's PostgreSQL backend, read before the connection closes
    backend_cpu_seconds: float = 0.0
    error: str = ""


@dataclass
class PhaseResult:
    workers: list[WorkerResult]

    @property
    def count(self) -> int:
        return sum(w.count for w in self.workers)

    @property
    def elapsed(self) -> float:
        started = [w.started for w in self.workers if w.count]
        finished = [w.finished for w in self.workers if w.count]
        return (max(finished) - min(started)) if started else 0.0

    @property
    def rate(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0

    @property
    def statuses(self) -> Counter:
        total: Counter = Counter()
        for worker in self.workers:
            total.update(worker.statuses)
        return total

    @property
    def generator_cpu(self) -> float:
        """Cores the generator itself used during the phase."""
        return sum(w.cpu_seconds for w in self.workers) / self.elapsed if self.elapsed else 0.0

    @property
    def backend_cpu(self) -> float:
        """Cores the PostgreSQL backends of a raw phase used."""
        return sum(w.backend_cpu_seconds for w in self.workers) / self.elapsed if self.elapsed else 0.0

    @property
    def errors(self) -> list[str]:
        return [w.error for w in self.workers if w.error]

    def percentile(self, p: float) -> float:
        values = sorted(v for w in self.workers for v in w.latencies)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _run_workers(target: Callable[..., None], per_worker_args: Sequence[tuple], timeout: float) -> PhaseResult:
    queue = _CTX.Queue()
    barrier = _CTX.Barrier(len(per_worker_args))
    processes = [
        _CTX.Process(target=_worker_main, args=(target, index, args, barrier, queue), daemon=True)
        for index, args in enumerate(per_worker_args)
    ]
    for process in processes:
        process.start()
    results: dict[int, WorkerResult] = {}
    deadline = time.monotonic() + timeout
    while len(results) < len(processes) and time.monotonic() < deadline:
        try:
            index, result = queue.get(timeout=max(0.1, deadline - time.monotonic()))
        except Exception:  # noqa: S112 - queue.Empty: loop re-checks the deadline
            continue
        results[index] = result
    for process in processes:
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
    missing = [i for i in range(len(processes)) if i not in results]
    for index in missing:
        results[index] = WorkerResult(error=f"worker {index} did not report within {timeout:.0f} s")
    return PhaseResult([results[i] for i in range(len(processes))])


def _worker_main(target, index, args, barrier, queue) -> None:
    result = WorkerResult()
    try:
        target(result, barrier, *args)
    except Exception as exc:  # reported, not raised: the parent prints it
        result.error = f"{type(exc).__name__}: {exc}"
        barrier.abort()
    queue.put((index, result))


# --- HTTP ------------------------------------------------------------------------------------


def signed_request_bytes(host: str, port: int, key_id: str, secret: str, spec: RequestSpec) -> bytes:
    method, path, query, body = spec
    authorization = signing.authorization_header(
        key_id=key_id, secret=secret, method=method, path=path, query=query, body=body
    )
    target = f"{path}?{query}" if query else path
    lines = [
        f"{method} {target} HTTP/1.1",
        f"Host: {host}:{port}",
        f"Authorization: {authorization}",
        f"Content-Length: {len(body)}",
    ]
    if body:
        lines.append("Content-Type: application/json")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class HttpConnection:
    """A keep-alive HTTP/1.1 connection that reads just enough to frame responses."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def exchange(self, raw: bytes) -> tuple[int, bytes]:
        if self.sock is None:
            self.sock = self._connect()
        self.sock.sendall(raw)
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            chunk = self.sock.recv(262144)
            if not chunk:
                raise ConnectionError("server closed the connection")
            buffer += chunk
        head, _, body = buffer.partition(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        length = 0
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            length = int(lower[at + 17 : lower.find(b"\r\n", at + 2)].strip())
        while len(body) < length:
            chunk = self.sock.recv(262144)
            if not chunk:
                raise ConnectionError("server closed the connection mid-body")
            body += chunk
        if b"\r\nconnection: close" in lower:  # sync workers: one request per connection
            self.close()
        return status, body

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _http_worker(
    result: WorkerResult,
    barrier,
    host: str,
    port: int,
    key_id: str,
    secret: str,
    build: Callable[[int], RequestSpec],
    count: int,
    duration: float,
) -> None:
    prepared = [signed_request_bytes(host, port, key_id, secret, build(i)) for i in range(count)]
    connection = HttpConnection(host, port)
    connection.sock = connection._connect()
    barrier.wait()
    cpu = _cpu()
    result.started = time.perf_counter()
    deadline = result.started + duration
    latencies = result.latencies
    statuses = result.statuses
    for raw in prepared:
        began = time.perf_counter()
        status, _ = connection.exchange(raw)
        done = time.perf_counter()
        latencies.append(done - began)
        statuses[status] += 1
        if done > deadline:
            break
    result.finished = time.perf_counter()
    result.count = len(latencies)
    result.cpu_seconds = _cpu() - cpu
    connection.close()


def http_phase(
    *,
    host: str,
    port: int,
    keys: Sequence[dict[str, str]],
    builders: Sequence[Callable[[int], RequestSpec]],
    count: int,
    duration: float,
) -> PhaseResult:
    """One process per builder, each on its own key and keep-alive connection."""
    args = [
        (host, port, keys[i % len(keys)]["key_id"], keys[i % len(keys)]["secret"], build, count, duration)
        for i, build in enumerate(builders)
    ]
    return _run_workers(_http_worker, args, timeout=duration + 120)


# --- raw psycopg -------------------------------------------------------------------------------


def _raw_worker(
    result: WorkerResult,
    barrier,
    dsn: str,
    sql: str,
    build: Callable[[int], Any],
    count: int,
    duration: float,
    many: bool,
) -> None:
    import psycopg

    from bench.cpu import process_cpu

    prepared = [build(i) for i in range(count)]
    with psycopg.connect(dsn, autocommit=True) as conn:
        cursor = conn.cursor()
        backend = conn.info.backend_pid
        barrier.wait()
        backend_cpu = process_cpu(backend)
        cpu = _cpu()
        result.started = time.perf_counter()
        deadline = result.started + duration
        for params in prepared:
            began = time.perf_counter()
            if many:
                with conn.transaction():
                    cursor.executemany(sql, params)
            else:
                cursor.execute(sql, params)
            done = time.perf_counter()
            result.latencies.append(done - began)
            result.statuses["ok"] += 1
            if done > deadline:
                break
        result.finished = time.perf_counter()
        result.count = len(result.latencies)
        result.cpu_seconds = _cpu() - cpu
        result.backend_cpu_seconds = process_cpu(backend) - backend_cpu


def raw_phase(
    *,
    dsn: str,
    sql: str,
    builders: Sequence[Callable[[int], Any]],
    count: int,
    duration: float,
    many: bool = False,
) -> PhaseResult:
    """One process and one autocommit connection per builder; `many`: one transaction per item."""
    args = [(dsn, sql, build, count, duration, many) for build in builders]
    return _run_workers(_raw_worker, args, timeout=duration + 120)
