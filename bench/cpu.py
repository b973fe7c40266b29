"""Where the CPU went during a phase: gunicorn workers, PostgreSQL, everything (from /proc)."""

from __future__ import annotations

import os
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int, *, children: bool = False) -> float:
    """CPU seconds used so far by one process (and its waited-for children)."""
    with open(f"/proc/{pid}/stat", "rb") as handle:
        raw = handle.read().decode(errors="replace")
    fields = raw[raw.rindex(")") + 2 :].split()
    return sum(int(v) for v in fields[11 : 15 if children else 13]) / _TICKS


def _processes() -> dict[int, tuple[str, int, float]]:
    """pid -> (command line, parent pid, CPU seconds used so far, waited-for children included)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                raw = handle.read().decode(errors="replace")
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        found[int(entry)] = (command or name, int(fields[1]), sum(int(v) for v in fields[11:15]) / _TICKS)
    return found


def _busy_total() -> tuple[float, float]:
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / _TICKS, sum(values) / _TICKS


@dataclass
class Snapshot:
    processes: dict[int, tuple[str, int, float]]
    busy: float
    total: float


def snapshot() -> Snapshot:
    busy, total = _busy_total()
    return Snapshot(_processes(), busy, total)


def _descendants(processes: dict[int, tuple[str, int, float]], root: int) -> set[int]:
    found = {root}
    grew = True
    while grew:
        grew = False
        for pid, (_, parent, _) in processes.items():
            if parent in found and pid not in found:
                found.add(pid)
                grew = True
    return found


def _ours(command: str, database: str) -> bool:
    """A PostgreSQL process that works for the bench: its own backends and the shared helpers.

    Backends show as "postgres: 15/main: <user> <database> <client> <state>"; backends
    of other databases (other programs on the machine) and the postmaster, whose
    waited-for children include them, are not counted.
    """
    if not command.startswith("postgres:"):
        return False
    words = command.split()
    if len(words) >= 5 and "(" in words[4]:  # a client backend: user, database, host(port)
        return words[3] == database
    return True  # checkpointer, background writer, WAL writer, autovacuum


def usage(
    before: Snapshot, after: Snapshot, *, server_pid: int, elapsed: float, database: str, new_backends: bool
) -> dict[str, float]:
    """Cores used on average: by the app server, by PostgreSQL for the bench, by the whole machine."""

    def delta(pids: set[int]) -> float:
        return sum(
            after.processes[pid][2] - before.processes.get(pid, (None, None, 0.0))[2]
            for pid in pids
            if pid in after.processes
        )

    server = _descendants(after.processes, server_pid)
    # A raw phase's backends exit as it ends and the phase reports their CPU itself
    # (new_backends=False); gunicorn's may reconnect during a phase (CONN_MAX_AGE).
    postgres = {
        pid
        for pid, (command, _, _) in after.processes.items()
        if (new_backends or pid in before.processes) and _ours(command, database)
    }
    cores = (after.total - before.total) / elapsed if elapsed else 0.0
    return {
        "server": delta(server) / elapsed if elapsed else 0.0,
        "postgres": delta(postgres) / elapsed if elapsed else 0.0,
        "machine": (after.busy - before.busy) / elapsed if elapsed else 0.0,
        "cores": cores,
    }
