"""What the ``server`` backend's calls share: one asyncio event loop in a thread of its own, one pooled
HTTP client and one gate of ``concurrency`` requests in flight, whichever thread a call comes from.

Calls are submitted from any thread with :meth:`ClientLoop.submit` (``run_coroutine_threadsafe``: the one
thread-safe way into a running loop) and run as tasks of that loop; each call's requests, errors and
cancellation are its own, only the connections and the gate are shared. :meth:`ClientLoop.close` cancels
the calls still running (their callers get an error saying so, none waits forever), closes the client and
stops the loop's thread. A :class:`BusyClock` counts the wall time during which at least one call ran, so
the engine's seconds (and tok/s) are not inflated by calls that overlap.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any


class ClientLoop:
    """The loop, the client and the gate of one engine (see the module's docstring)."""

    def __init__(self, http: Any, *, concurrency: int, headers: dict[str, str], timeout: float) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="hf-synth-server-client", daemon=True
        )
        self._thread.start()
        self.client: Any = None
        self.gate: asyncio.Semaphore | None = None

        async def open_client() -> None:  # on the loop's thread, where the client and the gate are used
            limits = http.Limits(max_connections=concurrency + 8, max_keepalive_connections=concurrency)
            self.client = http.AsyncClient(
                headers=headers, follow_redirects=True, timeout=timeout, limits=limits
            )
            self.gate = asyncio.Semaphore(concurrency)

        asyncio.run_coroutine_threadsafe(open_client(), self.loop).result()

    def submit(self, call: Coroutine) -> concurrent.futures.Future:
        """Run ``call`` on the loop; safe from any thread. The future's result is the call's result."""
        return asyncio.run_coroutine_threadsafe(call, self.loop)

    def on_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def close(self, timeout: float = 30.0) -> None:
        """Cancel the calls still running, close the connections and stop the loop's thread."""
        if self.on_loop_thread():
            raise RuntimeError(
                "ServerEngine.close() was called from an on_output callback (the client's own thread); "
                "close the engine after generate() has returned."
            )

        async def shutdown() -> None:
            me = asyncio.current_task()
            calls = [task for task in asyncio.all_tasks() if task is not me]
            for task in calls:
                task.cancel()
            await asyncio.gather(*calls, return_exceptions=True)
            await self.client.aclose()

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(timeout)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self.loop.close()


class BusyClock:
    """Wall time during which at least one call ran, handed out call by call: the seconds of calls that
    overlap are counted once (their sum is the union of their intervals)."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._running = 0
        self._mark = 0.0
        self._unclaimed = 0.0

    def _advance(self, now: float) -> None:
        if self._running:
            self._unclaimed += now - self._mark
        self._mark = now

    def started(self) -> None:
        with self._lock:
            self._advance(self._clock())
            self._running += 1

    def finished(self) -> float:
        """Seconds to count for the call that just finished: the busy time not yet counted by another."""
        with self._lock:
            self._advance(self._clock())
            self._running -= 1
            seconds, self._unclaimed = self._unclaimed, 0.0
            return seconds
