"""`manage.py seal_history [--every SECONDS]`: seal what has committed and is not yet sealed."""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connection

from history.services import HistoryRewound, history_seal

logger = logging.getLogger("history.seal")


class Command(BaseCommand):
    help = (
        "Seal every event and audit record committed and not yet sealed into the next block of the "
        "chain. With --every SECONDS, keep doing so until SIGTERM or SIGINT (run it as its own "
        "service beside gunicorn, docs/runbooks/history.md). Exit status 1 when the database's "
        "transaction ids went back (a logical restore), 2 on unusable arguments."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--every", type=float, metavar="SECONDS", help="Seal in a loop, this often.")

    def handle(self, *args: Any, **options: Any) -> None:
        every = options["every"]
        if every is None:
            if not self._seal_all():
                self.stdout.write("nothing to seal")
            return
        if not 0 < every <= 3600:
            raise CommandError("--every must be more than 0 and at most 3600 seconds.", returncode=2)
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        self.stderr.write(f"sealing every {every:g} s; SIGTERM or SIGINT stops after the current seal")
        while not stop.is_set():
            began = time.monotonic()
            try:
                self._seal_all()
            except DatabaseError:
                # The database restarting or failing over: try again at the next tick, on a new connection.
                logger.exception("sealing failed; retrying in %s s", every)
                connection.close()
            stop.wait(max(0.0, every - (time.monotonic() - began)))

    def _seal_all(self) -> int:
        """Seal what has committed; a backlog comes in several blocks of bounded size."""
        sealed = 0
        while True:
            try:
                block = history_seal()
            except HistoryRewound as exc:
                raise CommandError(f"refusing to seal: {exc}", returncode=1) from None
            if block is None:
                return sealed
            sealed += 1
            self.stdout.write(
                f"block={block.number} records={block.records} total={block.records_total} hash={block.hash}"
            )
            if not block.more:
                return sealed
