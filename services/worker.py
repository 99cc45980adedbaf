"""Run one service as a faust worker: ``ntx service intake|scheduler|alerts``."""

from __future__ import annotations

import logging.config
import sys
import threading

import faust

from services.bootstrap import build
from shared.app import exit_unacknowledged, make_app
from shared.logs import logging_config
from shared.runtime import Runtime
from shared.settings import get_settings


def _worker_class(runtime: Runtime) -> type[faust.Worker]:
    """A faust worker that tells the runtime when it is told to stop, before its own
    shutdown waits for the batch in hand: a batch retried for ever (the database away)
    is then abandoned unacknowledged instead of holding SIGTERM off for ever."""

    class Worker(faust.Worker):
        def _on_sigterm(self) -> None:
            _stopping(runtime)
            super()._on_sigterm()

        def _on_sigint(self) -> None:
            _stopping(runtime)
            super()._on_sigint()

    return Worker


def _stopping(runtime: Runtime) -> None:
    """A retried batch is abandoned at once; anything else that holds the shutdown
    (a statement hanging on a frozen database) is cut off after ``stop_grace_s``."""
    if runtime.shutdown_requested.is_set():
        return
    runtime.shutdown_requested.set()
    why = f"not stopped {runtime.settings.stop_grace_s:g}s after the signal"
    grace = threading.Timer(runtime.settings.stop_grace_s, exit_unacknowledged, (runtime, why))
    grace.daemon = True
    grace.start()


def run_service(name: str) -> int:
    settings = get_settings()
    config = logging_config(name, settings.log_level)
    logging.config.dictConfig(config)
    runtime = build(name, settings)
    if runtime.spec.check is not None:
        try:
            runtime.spec.check()
        except ValueError as exc:  # names the field, never a secret's value
            print(f"ntx service {name}: invalid configuration: {exc}", file=sys.stderr)
            return 2
    app = make_app(runtime)
    worker = _worker_class(runtime)(
        app,
        loglevel=settings.log_level,
        logging_config=config,
        redirect_stdouts=False,
        quiet=True,
    )
    worker.execute_from_commandline()
    return 0
