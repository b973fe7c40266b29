"""Threads released together: the one race helper of the suite."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection

JOIN_TIMEOUT = 120


def race(racers: int, work: Callable[[int], Any]) -> list[Any]:
    """Run work(i) in `racers` threads released together; each one's result (or exception), in order.

    Each thread has its own database connection (Django's are per thread), closed at its end. A thread
    still running after JOIN_TIMEOUT seconds leaves None, so a hung racer fails the test instead of hanging it.
    """
    barrier = threading.Barrier(racers)
    results: list[Any] = [None] * racers

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as exc:  # reported by the callers' assertions
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    return results
