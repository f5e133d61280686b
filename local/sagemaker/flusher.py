"""A buffer flushed by a background thread: serving only appends; the thread ships batches every `interval`."""

from __future__ import annotations

import threading


class PeriodicFlusher:
    """Subclasses implement `flush()`; `stop()` joins the thread and flushes what is left."""

    def __init__(self, interval: float, name: str) -> None:
        self._interval = interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def flush(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.flush()
