#!/usr/bin/env python3
"""Run a command (the test suite) against a PostgreSQL server, finding or starting one.

    scripts/test_database.py [--mode auto|url|local|throwaway] -- pytest -q

In order (mode `auto`):
1. `DATABASE_URL` when it is set;
2. else the local server on 127.0.0.1:5432 (user `postgres`) when it answers;
3. else a throwaway cluster from local PostgreSQL binaries (`initdb`, `pg_ctl`), in a
   temporary folder on a free port, stopped and deleted afterwards;
4. else a message saying what to install, and exit status 2.

The command's exit status is this script's exit status.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

LOCAL_URL = "postgres://postgres@127.0.0.1:5432/postgres"
MISSING = 2
INSTALL_HINT = """\
make test needs PostgreSQL, and none was found. Any one of these is enough:
  * set DATABASE_URL to a server you may create databases on, e.g.
        DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/postgres make test
  * run a local server on 127.0.0.1:5432 that user `postgres` can log in to without a password;
  * install the PostgreSQL server binaries (initdb, pg_ctl), and a throwaway cluster is started:
        Debian/Ubuntu: sudo apt-get install postgresql
        Fedora:        sudo dnf install postgresql-server
        macOS:         brew install postgresql@16
"""


def log(message: str) -> None:
    print(f"[test_database] {message}", file=sys.stderr, flush=True)


def server_answers(url: str, timeout: float = 3.0) -> bool:
    try:
        import psycopg
    except ImportError:  # checked with a bare socket instead
        host_port = ("127.0.0.1", 5432)
        with contextlib.suppress(OSError), socket.create_connection(host_port, timeout=timeout):
            return True
        return False
    try:
        with psycopg.connect(url, connect_timeout=int(timeout)) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def find_binaries(pattern: str) -> tuple[Path, Path] | None:
    """initdb and pg_ctl from PATH, else from the newest folder matching `pattern`."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Path(initdb), Path(pg_ctl)

    def version(folder: str) -> tuple[int, ...]:
        digits = [part for part in Path(folder).parts if part.replace(".", "").isdigit()]
        return tuple(int(x) for x in digits[-1].split(".")) if digits else (0,)

    for folder in sorted(glob.glob(pattern), key=version, reverse=True):
        initdb, pg_ctl = Path(folder, "initdb"), Path(folder, "pg_ctl")
        if os.access(initdb, os.X_OK) and os.access(pg_ctl, os.X_OK):
            return initdb, pg_ctl
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def as_user_prefix() -> tuple[list[str], str | None]:
    """PostgreSQL refuses to run as root: run its binaries as `postgres` (or `nobody`) then."""
    if os.geteuid() != 0:
        return [], None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            runuser = shutil.which("runuser")
            if runuser:
                return [runuser, "-u", name, "--"], name
            return [shutil.which("sudo") or "sudo", "-u", name], name
    raise RuntimeError("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as")


@contextlib.contextmanager
def throwaway_cluster(initdb: Path, pg_ctl: Path) -> Iterator[str]:
    prefix, user = as_user_prefix()
    root = Path(tempfile.mkdtemp(prefix="amani-pg-"))
    data, logfile = root / "data", root / "server.log"
    if user:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    port = free_port()
    started = False
    try:
        log(f"starting a throwaway PostgreSQL cluster in {root} on 127.0.0.1:{port}")
        subprocess.run(  # noqa: S603 - fixed argument list, no shell
            [*prefix, str(initdb), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        subprocess.run(  # noqa: S603
            [*prefix, str(pg_ctl), "-D", str(data), "-l", str(logfile), "-o", options, "-w", "-t", "60", "start"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        started = True
        yield f"postgres://postgres@127.0.0.1:{port}/postgres"
    finally:
        if started:
            subprocess.run(  # noqa: S603
                [*prefix, str(pg_ctl), "-D", str(data), "-m", "fast", "-w", "stop"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
            log("throwaway cluster stopped")
        shutil.rmtree(root, ignore_errors=True)


def run(command: list[str], database_url: str) -> int:
    env = {**os.environ, "DATABASE_URL": database_url}
    process = subprocess.Popen(command, env=env)  # noqa: S603 - the caller's own command
    # Pass Ctrl-C / termination on to the command, then let the cluster shut down.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: process.send_signal(signum))
    return process.wait()


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print("usage: test_database.py [--mode auto|url|local|throwaway] -- COMMAND [ARGS...]", file=sys.stderr)
        return MISSING
    split = argv.index("--")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["auto", "url", "local", "throwaway"], default="auto")
    parser.add_argument("--pg-bin-glob", default="/usr/lib/postgresql/*/bin", help="where to look for initdb/pg_ctl")
    args = parser.parse_args(argv[:split])
    command = argv[split + 1 :]
    if not command:
        parser.error("no command after --")

    if args.mode in ("auto", "url") and os.environ.get("DATABASE_URL"):
        log("using DATABASE_URL")
        return run(command, os.environ["DATABASE_URL"])
    if args.mode in ("auto", "local") and server_answers(LOCAL_URL):
        log(f"using the local server {LOCAL_URL}")
        return run(command, LOCAL_URL)
    if args.mode in ("auto", "throwaway"):
        binaries = find_binaries(args.pg_bin_glob)
        if binaries:
            try:
                with throwaway_cluster(*binaries) as url:
                    return run(command, url)
            except (subprocess.CalledProcessError, RuntimeError) as exc:
                log(f"could not start a throwaway cluster: {exc}")
    print(INSTALL_HINT, file=sys.stderr)
    return MISSING


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
