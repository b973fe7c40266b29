"""`manage.py seal_history [--every SECONDS]`: seal what has committed and is not yet sealed."""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connection

from history.services import HistoryRewound, SealedBlock, history_seal

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
            self._report(self._seal_once(), quiet=False)
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
                self._report(self._seal_once(), quiet=True)
            except DatabaseError:
                # The database restarting or failing over: try again at the next tick, on a new connection.
                logger.exception("sealing failed; retrying in %s s", every)
                connection.close()
            stop.wait(max(0.0, every - (time.monotonic() - began)))

    @staticmethod
    def _seal_once() -> SealedBlock | None:
        try:
            return history_seal()
        except HistoryRewound as exc:
            raise CommandError(f"refusing to seal: {exc}", returncode=1) from None

    def _report(self, block: SealedBlock | None, *, quiet: bool) -> None:
        if block is not None:
            self.stdout.write(
                f"block={block.number} records={block.records} total={block.records_total} hash={block.hash}"
            )
        elif not quiet:
            self.stdout.write("nothing to seal")
