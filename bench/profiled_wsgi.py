"""amani.wsgi under pyinstrument, for `python -m bench.run --profile`.

Each gunicorn worker samples only while it serves a request (the sessions of all its
requests are combined) and writes its profile to $BENCH_PROFILE_DIR/<pid>.txt when it
exits, so idle time waiting for connections never shows up.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pyinstrument import Profiler

from amani.wsgi import application as _application

_profiler = Profiler(interval=0.0005)
_directory = Path(os.environ.get("BENCH_PROFILE_DIR", "."))


def application(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
    _profiler.start()
    try:
        # Rendering happens inside the view; joining the body keeps it in the sample.
        return [b"".join(_application(environ, start_response))]
    finally:
        _profiler.stop()


@atexit.register
def _write() -> None:
    if _profiler.last_session is not None:
        text = _profiler.output_text(unicode=False, color=False, show_all=False)
        (_directory / f"{os.getpid()}.txt").write_text(text)
