"""Threads that fit the cores other processes leave free.

torch (OpenMP) and numba split every operation across all cores and wait for the slowest thread. When
another process keeps a core busy, one of our threads is descheduled half the time and every other
thread spins waiting for it: measured on a 2-core AVX2 EPYC, a busy neighbour took the engine from
88.9 to 33.5 tok/s with 2 threads, while 1 thread made 49.2 tok/s beside it (and 51.2 alone). A light
neighbour (40% of a core) is better shared with 2 threads (55.0 against 46.4).

:class:`ThreadGovernor` measures, every :attr:`interval` seconds, how much CPU time the rest of the
machine took (``/proc/stat`` minus this process's ``/proc/self/stat``, steal time included) and uses
``cores - round(others)`` threads (at least 1) when others take more than :data:`CROWDED` of a core,
all of them again when they take less than :data:`CALM`. The first change of a process is logged at INFO,
later ones (a busy neighbour comes and goes many times in a long run) at DEBUG. Linux only; elsewhere the
thread count stays as it is.
"""

from __future__ import annotations

import logging
import os
import time

logger = logging.getLogger(__name__)

#: Others' use (cores) above which a thread is given up for each core they take.
CROWDED = 0.55
#: Others' use (cores) below which every thread is taken back.
CALM = 0.35

#: Whether this process has logged a thread change at INFO (later ones go to DEBUG).
_announced = False


def _clock_ticks() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 100


def read_cpu_times() -> tuple[float, float] | None:
    """(busy seconds of the whole machine, busy seconds of this process) so far, or ``None``."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        with open("/proc/self/stat") as f:
            own = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = _clock_ticks()
    # user nice system idle iowait irq softirq steal: everything but idle and iowait is taken.
    values = [int(v) for v in fields[1:9]]
    busy = sum(values) - values[3] - values[4]
    return busy / ticks, (int(own[11]) + int(own[12])) / ticks  # utime + stime


def set_threads(count: int) -> None:
    """torch's and numba's thread count."""
    import torch

    torch.set_num_threads(count)
    try:
        import numba

        numba.set_num_threads(min(count, numba.config.NUMBA_NUM_THREADS))
    except (ImportError, ValueError):  # pragma: no cover - numba is a dependency
        pass


class ThreadGovernor:
    """Adapts the thread count to other processes' CPU use (see the module docstring).

    Args:
        cores: The most threads to use (torch's thread count when the engine starts).
        interval: Seconds between measurements.
        reader: Where the CPU times come from (tests pass their own).
        apply: Sets the thread count (tests pass their own).
        clock: Seconds, monotonic (tests pass their own).
    """

    def __init__(
        self,
        cores: int,
        interval: float = 1.0,
        reader=read_cpu_times,
        apply=set_threads,
        clock=time.monotonic,
    ) -> None:
        self.cores = max(1, cores)
        self.threads = self.cores
        self.interval = interval
        self.reader = reader
        self.apply = apply
        self.clock = clock
        self.others = 0.0
        self._last = None
        self._last_time = 0.0

    def start(self) -> None:
        self._last = self.reader()
        self._last_time = self.clock()

    def update(self) -> int:
        """Measure if :attr:`interval` has passed, change the thread count if needed; return it."""
        now = self.clock()
        if self._last is None or now - self._last_time < self.interval:
            return self.threads
        sample = self.reader()
        if sample is None:
            return self.threads
        elapsed = now - self._last_time
        busy = sample[0] - self._last[0]
        own = sample[1] - self._last[1]
        self._last, self._last_time = sample, now
        self.others = max(0.0, (busy - own) / elapsed)
        if self.others > CROWDED:
            wanted = max(1, self.cores - max(1, round(self.others)))
        elif self.others < CALM:
            wanted = self.cores
        else:
            wanted = self.threads
        if wanted != self.threads:
            global _announced
            if _announced:
                logger.debug(
                    "Other processes use %.1f of %d cores: %d thread(s) now", self.others, self.cores, wanted
                )
            else:
                _announced = True
                logger.info(
                    "Other processes use %.1f of %d cores: %d thread(s) now (further changes are logged at "
                    "DEBUG)",
                    self.others,
                    self.cores,
                    wanted,
                )
            self.threads = wanted
            self.apply(wanted)
        return self.threads

    def stop(self) -> None:
        """Take every thread back (the next run starts from the full count)."""
        if self.threads != self.cores:
            self.apply(self.cores)
            self.threads = self.cores
        self._last = None
