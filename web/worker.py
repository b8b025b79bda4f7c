"""The deadline worker inside `tigao serve`: one background thread with its own Engine."""

from __future__ import annotations

import logging
import threading

from engine import Engine, EngineError, Worker

log = logging.getLogger("tigao.worker")


class BackgroundWorker:
    """Runs `Worker.run_once` every `interval` seconds until stopped.

    On SQLite only one worker holds the lease; when `tigao worker` (or another server) holds it,
    this one keeps polling and takes over when the lease is free.
    """

    def __init__(self, url: str | None, interval: float = 2.0):
        self.url = url
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._worker: Worker | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tigao-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._worker is not None:
            self._worker.stopping = True  # finishes the transaction in flight, then returns
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        engine = Engine(self.url)
        self._worker = w = Worker(engine)
        warned = False
        try:
            while not self._stop.is_set():
                try:
                    if w.acquire_lease():
                        warned = False
                        for f in w.run_once():
                            log.info("fired %s", f)
                    elif not warned:
                        log.warning("another worker holds this SQLite database's lease; waiting for it")
                        warned = True
                except EngineError as exc:
                    log.warning("worker pass failed: %s", exc.message)
                except Exception:  # noqa: BLE001 - the server must outlive a bad pass
                    log.exception("worker pass failed")
                self._stop.wait(self.interval)
        finally:
            try:
                w.release_lease()
            except EngineError:
                pass
            engine.close()
