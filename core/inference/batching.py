"""A batching scheduler: concurrent requests gathered into one batched generate call on a worker thread.

Requests arrive on an event loop; the model runs on one worker thread (so the loop never blocks). When the worker is
free it takes the oldest waiting request, waits a few milliseconds while more keep arriving, and runs every waiting
request whose options are compatible (same `group_key`) in one batch, up to ``max_rows`` rows. Requests that come
while a batch runs wait for the next one. Each request gets its results as events on its own asyncio queue; a
cancelled request stops occupying its rows at the next decoding step.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from tunefactory.inference.engine import EngineBusy, EngineClosed

logger = logging.getLogger(__name__)
_ids = itertools.count()


class Job:
    """One request: its prompt rows, options and media, and the queue its events go to."""

    def __init__(self, rows: list[list[int]], params: Any, media: dict[str, Any] | None = None,
                 loop: asyncio.AbstractEventLoop | None = None, alone: bool = False) -> None:
        self.id = next(_ids)
        self.rows = rows
        self.params = params
        self.media = media or {}
        self.loop = loop or asyncio.get_running_loop()
        self.events: asyncio.Queue = asyncio.Queue()
        self.cancelled = False
        # media inputs and beam search do not mix with other requests
        self.key: Any = object() if alone or self.media else params.group_key()

    def emit(self, *event: Any) -> None:
        if not self.loop.is_closed():
            try:
                self.loop.call_soon_threadsafe(self.events.put_nowait, event)
            except RuntimeError:  # the loop closed meanwhile: nobody is listening
                pass

    def cancel(self) -> None:
        self.cancelled = True


class _Task:
    """Work that needs the model alone (e.g. scoring)."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.future: concurrent.futures.Future = concurrent.futures.Future()
        self.cancelled = False


class BatchScheduler:
    def __init__(
        self,
        run_batch: Callable[[list[Job]], None],
        *,
        max_rows: int = 16,
        quiet_s: float = 0.004,
        max_wait_s: float = 0.03,
        max_waiting: int = 1024,
        name: str = "tunefactory-batcher",
    ) -> None:
        self.run_batch = run_batch
        self.max_rows = max(1, max_rows)
        self.quiet_s, self.max_wait_s, self.max_waiting = quiet_s, max_wait_s, max_waiting
        self._waiting: deque[Job | _Task] = deque()
        self._cv = threading.Condition()
        self._closed = False
        self.running: list[Job] = []
        self.batches = 0  # batches run so far (for tests and stats)
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    # -- the event-loop side ----------------------------------------------------------------------------------

    def submit(self, job: Job | _Task) -> None:
        with self._cv:
            if self._closed:
                raise EngineClosed("the engine is shut down")
            if len(self._waiting) >= self.max_waiting:
                raise EngineBusy(f"{len(self._waiting)} requests are already waiting; try again shortly")
            self._waiting.append(job)
            self._cv.notify()

    async def run_alone(self, fn: Callable[[], Any]) -> Any:
        task = _Task(fn)
        self.submit(task)
        return await asyncio.wrap_future(task.future)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def running_rows(self) -> int:
        """Rows still generating in the running batch (cancelled requests no longer count)."""
        return sum(len(job.rows) for job in self.running if not job.cancelled)

    def close(self, timeout: float = 30.0) -> None:
        """Refuse new work, end what waits, let the running batch stop at its next step, and join the worker."""
        with self._cv:
            if self._closed:
                return
            self._closed = True
            left = list(self._waiting)
            self._waiting.clear()
            self._cv.notify_all()
        for job in list(self.running):  # the running batch stops at its next step
            job.cancel()
        for item in left:
            self._fail(item, EngineClosed("the engine shut down before this request ran"))
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- the worker side --------------------------------------------------------------------------------------

    @staticmethod
    def _fail(item: Job | _Task, error: BaseException) -> None:
        if isinstance(item, _Task):
            if not item.future.done():
                item.future.set_exception(error)
        else:
            item.emit("error", error)

    def _take(self, key: Any, rows: int, batch: list[Job]) -> int:
        """Move waiting jobs with ``key`` into ``batch`` while they fit; returns the rows taken (lock held)."""
        kept: deque[Job | _Task] = deque()
        while self._waiting:
            item = self._waiting.popleft()
            if isinstance(item, Job) and item.cancelled:
                continue
            if isinstance(item, Job) and item.key == key and rows + len(item.rows) <= self.max_rows:
                batch.append(item)
                rows += len(item.rows)
            else:
                kept.append(item)
        self._waiting = kept
        return rows

    def _next(self) -> list[Job] | _Task | None:
        with self._cv:
            while True:
                while not self._waiting and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return None
                first = self._waiting.popleft()
                if isinstance(first, _Task):
                    return first
                if not first.cancelled:
                    break
            batch, rows = [first], len(first.rows)
            if isinstance(first.key, tuple):  # jobs with a private key run alone
                rows = self._take(first.key, rows, batch)
                start = last = time.monotonic()
                while rows < self.max_rows and not self._closed:
                    now = time.monotonic()
                    wait = min(last + self.quiet_s, start + self.max_wait_s) - now
                    if wait <= 0:
                        break
                    before = len(self._waiting)
                    self._cv.wait(wait)
                    if len(self._waiting) != before:
                        last = time.monotonic()
                    rows = self._take(first.key, rows, batch)
            return batch

    def _work(self) -> None:
        while True:
            item = self._next()
            if item is None:
                return
            if isinstance(item, _Task):
                try:
                    item.future.set_result(item.fn())
                except BaseException as exc:  # handed to the caller
                    item.future.set_exception(exc)
                continue
            self.running = item
            self.batches += 1
            try:
                self.run_batch(item)
            except BaseException as exc:  # one failing batch must not stop the server
                logger.exception("a generation batch failed")
                for job in item:
                    self._fail(job, exc)
            finally:
                self.running = []
