"""The background indexer: one worker thread that runs index builds for sealed segments, in order.

A collection hands it a job (a callable that builds aside and swaps the index in) under an owner key;
``wait(owner)`` blocks until that owner's jobs are done. The indexer knows nothing of collections.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Hashable


class BackgroundIndexer:
    """Runs submitted build jobs one at a time on a daemon thread started on first use."""

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue()
        self._pending: dict[Hashable, int] = {}
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, owner: Hashable, job: Callable[[], None]) -> None:
        """Queue ``job`` for ``owner``; jobs must catch their own errors (an escaping one is dropped)."""
        with self._cond:
            if self._closed:
                return
            self._pending[owner] = self._pending.get(owner, 0) + 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="milvus_lab-indexer", daemon=True)
                self._thread.start()
        self._queue.put((owner, job))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            owner, job = item
            try:
                job()
            except Exception:  # noqa: S110 - the worker must survive; jobs record their own errors
                pass
            finally:
                with self._cond:
                    self._pending[owner] -= 1
                    if not self._pending[owner]:
                        del self._pending[owner]
                    self._cond.notify_all()

    def wait(self, owner: Hashable | None = None, timeout: float | None = None) -> bool:
        """Wait until no job is pending (for one owner, or any); False on timeout."""
        def idle() -> bool:
            return not self._pending if owner is None else owner not in self._pending

        with self._cond:
            return self._cond.wait_for(idle, timeout)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=60)
