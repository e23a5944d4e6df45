"""Fixed-shape decode steps for :class:`~hf_synth.engine.continuous.ContinuousBatcher` (static mode).

On a GPU a decode step of a small model is a few hundred short kernels; launched one by one from Python
the GPU waits on the host. :class:`StepGraphs` owns what a fixed-shape step reads and writes — the KV
cache of every slot, the rotary tables for every position, the input buffers — and records each step
shape once as a CUDA graph that later steps replay with a single launch.

Shapes come in buckets so that few graphs serve a whole run: the live rows (compacted to the front of
the slots) round up to a power of two (at least 8), the attended length rounds up to a multiple of
:data:`LENGTH_BUCKET`. Rows beyond the live ones compute on free slots and are ignored; keys beyond a
row's position are masked. Off CUDA (or with ``capture=False``) the same step runs eagerly with exact
shapes, or with the bucketed ones when asked (``bucketed=True``: how the test suite checks the padding on
the CPU).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

logger = logging.getLogger(__name__)

#: The attended cache length of a step is rounded up to a multiple of this.
LENGTH_BUCKET = 128
#: The cache's capacity grows in steps of this many positions (a new cache drops the captured graphs).
CAPACITY_STEP = 256
#: Share of the free GPU memory the KV cache and the sampling temporaries may take.
MEMORY_SHARE = 0.8


def row_bucket(live: int, slots: int) -> int:
    """The row count a step with ``live`` rows runs: the next power of two, at least 8, at most ``slots``."""
    rows = 8
    while rows < live:
        rows *= 2
    return min(rows, slots)


def length_bucket(length: int, capacity: int) -> int:
    return min(capacity, -(-length // LENGTH_BUCKET) * LENGTH_BUCKET)


def row_buckets(slots: int) -> list[int]:
    """Every row count :func:`row_bucket` can return for ``slots`` slots (one logits buffer each)."""
    buckets = {row_bucket(live, slots) for live in range(1, slots + 1)}
    return sorted(buckets)


def bytes_per_slot(
    layers: int, kv_heads: int, head_dim: int, capacity: int, itemsize: int, vocab: int
) -> int:
    """GPU memory one slot costs: its keys and values for ``capacity`` positions in every layer, the
    sampling temporaries of its row (float32 logits, probabilities, cumulative sums, masks: 4 rows of the
    vocabulary), and its share of the captured steps' float32 logits buffers (one per row bucket: the
    powers of two from 8 below the slots add up to less than twice the slots, plus the slots themselves:
    3 rows)."""
    kv = 2 * layers * kv_heads * capacity * head_dim * itemsize
    return kv + (4 + 3) * vocab * 4


def slots_that_fit(free_bytes: int, per_slot: int, share: float = MEMORY_SHARE) -> int:
    """How many slots of ``per_slot`` bytes fit in ``share`` of ``free_bytes``."""
    return int(free_bytes * share) // per_slot


def fit_slots(batcher, slots: int, capacity: int) -> int:
    """``slots``, or fewer where the KV cache, the sampling temporaries and the logits buffers (see
    :func:`bytes_per_slot`) would not fit on the GPU."""
    device = batcher.device
    if device.type != "cuda":
        return slots
    itemsize = torch.empty((), dtype=batcher.dtype).element_size()
    per_slot = bytes_per_slot(
        len(batcher.layers), batcher.n_kv, batcher.head_dim, capacity, itemsize, batcher.vocab_size
    )
    free, _ = torch.cuda.mem_get_info(device)
    fit = slots_that_fit(free, per_slot)
    if fit < 1:
        raise torch.OutOfMemoryError(
            f"One sequence of {capacity} positions does not fit in the {free >> 20} MB free on {device}; "
            "lower max_new_tokens or shorten the prompts"
        )
    if fit < slots:
        logger.info(
            "KV cache: %d slots of %d positions fit in GPU memory (asked for %d)", fit, capacity, slots
        )
    return min(slots, fit)


@dataclass
class _Captured:
    graph: object
    logits: torch.Tensor  # the row bucket's buffer, which the graph's last operation fills


class StepGraphs:
    """The static-mode cache, tables and captured steps of one batcher (see the module docstring)."""

    def __init__(
        self, batcher, slots: int, capacity: int, capture: bool | None = None, bucketed: bool | None = None
    ) -> None:
        device, dtype = batcher.device, batcher.dtype
        self.batcher = batcher
        self.capacity = -(-capacity // CAPACITY_STEP) * CAPACITY_STEP
        self.requested_slots = slots  # a batcher whose slot count changes builds new graphs
        self.slots = fit_slots(batcher, slots, self.capacity)
        shape = (len(batcher.layers), self.slots, batcher.n_kv, self.capacity, batcher.head_dim)
        self.k_cache = torch.zeros(shape, dtype=dtype, device=device)
        self.v_cache = torch.zeros(shape, dtype=dtype, device=device)
        self.key_index = torch.arange(self.capacity, device=device)
        cos, sin = batcher.rotary(batcher.embed[:1], self.key_index.view(1, -1))
        self.cos, self.sin = cos[0].contiguous(), sin[0].contiguous()
        self.row_index = torch.arange(self.slots, device=device)
        self.tokens = torch.zeros(self.slots, dtype=torch.long, device=device)
        self.positions = torch.zeros(self.slots, dtype=torch.long, device=device)
        self.capture = device.type == "cuda" if capture is None else capture
        # Bucketed shapes are what lets graphs be reused; eager steps run exact shapes unless asked.
        self.bucketed = self.capture if bucketed is None else bucketed or self.capture
        self._captured: dict[tuple[int, int], _Captured] = {}
        #: One float32 logits buffer per row bucket, shared by that bucket's graphs of every length (made
        #: when the bucket is first captured; counted in fit_slots' memory budget).
        self._logits: dict[int, torch.Tensor] = {}
        self._pool = None

    def rope(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos/sin of shape (rows, 1, head_dim) at ``positions`` (a lookup: no host synchronisation)."""
        return self.cos.index_select(0, positions).unsqueeze(1), self.sin.index_select(
            0, positions
        ).unsqueeze(1)

    @property
    def captured(self) -> int:
        """How many step shapes have been captured as CUDA graphs so far."""
        return len(self._captured)

    def step(self, tokens: torch.Tensor, positions: torch.Tensor, live: int, length: int) -> torch.Tensor:
        """Logits (live, vocab) of one decode step of the first ``live`` slots, which attend at most
        ``length`` positions."""
        if self.bucketed:
            rows, length = row_bucket(live, self.slots), length_bucket(length, self.capacity)
        else:
            rows = live
        self.tokens[:live].copy_(tokens[:live])
        self.positions[:live].copy_(positions[:live])
        if not self.capture:
            return self.batcher.step_static(self.tokens[:rows], self.positions[:rows], length)[:live]
        captured = self._captured.get((rows, length))
        if captured is None:
            captured = self._record(rows, length)
        captured.graph.replay()
        return captured.logits[:live]

    def _record(self, rows: int, length: int) -> _Captured:
        """Capture the step for (rows, length) after warm-up runs on a side stream (as PyTorch advises).

        The warm-up steps write the same keys and values the real step writes, so they change nothing.
        """
        device = self.batcher.device
        tokens, positions = self.tokens[:rows], self.positions[:rows]
        side = torch.cuda.Stream(device=device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(2):
                self.batcher.step_static(tokens, positions, length)
        torch.cuda.current_stream(device).wait_stream(side)
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        buffer = self._logits.get(rows)
        if buffer is None:
            buffer = self._logits[rows] = torch.empty(
                rows, self.batcher.vocab_size, dtype=torch.float32, device=device
            )
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool):
            buffer.copy_(self.batcher.step_static(tokens, positions, length))
        captured = _Captured(graph, buffer)
        self._captured[(rows, length)] = captured
        logger.debug("Captured the decode step for %d rows x %d positions", rows, length)
        return captured
