"""One worker thread that computes while its caller produces the next input; results in submission order.

A parity run uses it for the metrics of frame i while the backend computes (or a port writes, and
the harness reads) frame i + 1, and `infer` to encode and write frame i while it makes frame i + 1:
numpy and OpenCV release the GIL, so both run at once.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


class OrderedWorker(Generic[T]):
    """Calls `fn` in one thread (which first runs `initializer`, if given), at most `depth` calls queued
    or running; results come back with their tags, in the order submitted. Use as a context manager:
    leaving it cancels what has not started."""

    def __init__(self, fn: Callable[..., T], depth: int = 2, initializer: Callable[[], None] | None = None,
                 name: str = "ordered-worker") -> None:
        self.fn, self.depth = fn, depth
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name, initializer=initializer)
        self._pending: deque[tuple[Any, Future]] = deque()

    def submit(self, tag: Any, *args: Any) -> list[tuple[Any, T]]:
        """Queue fn(*args); return the (tag, result) of every earlier call that is done, waiting for the
        oldest ones while more than `depth` are pending."""
        self._pending.append((tag, self._pool.submit(self.fn, *args)))
        out = []
        while self._pending and (len(self._pending) > self.depth or self._pending[0][1].done()):
            tag0, future = self._pending.popleft()
            out.append((tag0, future.result()))
        return out

    def drain(self) -> list[tuple[Any, T]]:
        """Wait for every pending call; their (tag, result), in order."""
        out = [(tag, future.result()) for tag, future in self._pending]
        self._pending.clear()
        return out

    def __enter__(self) -> OrderedWorker[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        for _, future in self._pending:
            future.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True)
