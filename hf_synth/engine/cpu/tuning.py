"""Choices of the CPU runtime that depend on the CPU, made by measuring it once.

Which way a projection runs fastest depends on the CPU and the shape: oneDNN with its weights packed
into its blocked layout wins by 1.2-1.5x on the AVX-512 and AVX2 EPYCs measured so far, but not
everywhere (a loaded AVX2 host measured packed 576x576 at 64 rows slower than unpacked). So at engine
start each projection shape of the model is timed at the decode batch (``slots`` rows) with every
method the build offers — oneDNN packed, oneDNN unpacked, PyTorch's ``F.linear`` — on random weights of
that shape, and the fastest is used. The choice is cached per machine in
``~/.cache/hf_synth/cpu_tuning.json`` (``$HF_SYNTH_CACHE``), keyed by the CPU model, the ISA really
used, the threads, torch's version, the dtype, the shape and the rows, so later engines skip the timing.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from ...atomic import atomic_write_text
from .info import cpu_info

logger = logging.getLogger(__name__)

#: Ways a projection can run on the CPU.
METHODS = ("packed", "onednn", "torch")
#: Timed repetitions of each method (the median counts); the methods are interleaved against drift.
REPEATS = 5
#: Another method replaces the first one offered (packed) only when it is faster by more than this
#: factor: timings on a shared machine wander by ±10-30%, and a cached choice should not be noise.
MARGIN = 1.1


def tuning_file() -> Path:
    from ..default_model import cache_root

    return cache_root() / "cpu_tuning.json"


def _key(shape: tuple[int, int], rows: int, dtype: torch.dtype) -> str:
    info = cpu_info()
    return "|".join(
        [
            info.model,
            info.used_isa,
            f"threads={torch.get_num_threads()}",
            f"torch={torch.__version__}",
            str(dtype).removeprefix("torch."),
            f"{shape[0]}x{shape[1]}",
            f"rows={rows}",
        ]
    )


def _load() -> dict:
    try:
        return json.loads(tuning_file().read_text())
    except (OSError, ValueError):
        return {}


def _save(entries: dict) -> None:
    path = tuning_file()
    try:
        atomic_write_text(path, json.dumps(entries, indent=1, sort_keys=True))  # never half a file read
    except OSError as err:  # a read-only cache only costs the timing next time
        logger.debug("CPU tuning not cached (%s)", err)


def _runner(method: str, weight: torch.Tensor, rows: int, pack) -> Callable[[torch.Tensor], torch.Tensor]:
    if method == "torch":
        return lambda x: F.linear(x, weight)
    linear = torch.ops.mkldnn._linear_pointwise
    w = pack(weight) if method == "packed" else weight
    return lambda x: linear(x, w, None, "none", [], "")


def time_methods(shape: tuple[int, int], rows: int, dtype: torch.dtype, methods, pack) -> dict[str, float]:
    """Median seconds of one ``rows`` x ``shape`` projection with each method (random data)."""
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(shape, generator=generator).to(dtype)
    x = torch.randn(rows, shape[1], generator=generator).to(dtype)
    runners = {m: _runner(m, weight, rows, pack) for m in methods}
    flops = 2 * rows * shape[0] * shape[1]
    inner = min(20, max(1, int(2e7 // flops)))  # small shapes: several calls per timing
    samples: dict[str, list[float]] = {m: [] for m in methods}
    with torch.inference_mode():
        for run in runners.values():
            run(x)  # warm-up: oneDNN creates its primitive on first use
        for _ in range(REPEATS):
            for method, run in runners.items():
                started = time.perf_counter()
                for _ in range(inner):
                    run(x)
                samples[method].append((time.perf_counter() - started) / inner)
    return {m: statistics.median(s) for m, s in samples.items()}


def choose_methods(
    shapes: dict[str, tuple[int, int]], rows: int, dtype: torch.dtype, methods, pack
) -> dict[str, str]:
    """The fastest method for each named projection shape at ``rows`` rows (timed once per machine);
    ``methods[0]`` is kept unless another beats it by more than :data:`MARGIN`."""
    cached = _load()
    chosen, measured = {}, {}
    for name, shape in shapes.items():
        key = _key(shape, rows, dtype)
        entry = cached.get(key)
        if entry and entry.get("method") in methods:
            chosen[name] = entry["method"]
            continue
        seconds = time_methods(shape, rows, dtype, methods, pack)
        best = min(seconds, key=seconds.get)
        if seconds[methods[0]] <= seconds[best] * MARGIN:
            best = methods[0]
        flops = 2 * rows * shape[0] * shape[1]
        cached[key] = {
            "method": best,
            "gflops": {m: round(flops / s / 1e9, 1) for m, s in seconds.items()},
        }
        chosen[name] = best
        measured[name] = cached[key]["gflops"]
    if measured:
        _save(cached)
        for name, gflops in measured.items():
            logger.info(
                "CPU tuning, %s %s at %d rows: %s -> %s",
                name,
                "x".join(map(str, shapes[name])),
                rows,
                ", ".join(f"{m} {g} GFLOP/s" for m, g in gflops.items()),
                chosen[name],
            )
    return chosen
