"""The KV cache of one :meth:`~.batcher.ContinuousBatcher.run`: per-slot keys and values, the arena of
shared prompt prefixes, and the descriptions of what a prefill pass writes where.

On the CPU the cache lives in lazily committed zero pages (anonymous private mappings): memory is taken
only where tokens are written, and a slot's pages are handed back when a new sequence moves in, so the
memory in use follows the tokens really held, not each slot's longest occupant. In static mode the slot
caches are the ones :class:`~.cuda_graphs.StepGraphs` keeps between runs (its captured steps read them).
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass

import torch


def lazy_zeros(
    shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, object]:
    """A zero tensor; on the CPU its pages are committed only when written (RSS follows real use).

    Returns the tensor and, on the CPU, the ``mmap`` that holds it (``None`` elsewhere)."""
    if device.type != "cpu":
        return torch.zeros(shape, dtype=dtype, device=device), None
    count = 1
    for dim in shape:
        count *= dim
    nbytes = count * torch.empty((), dtype=dtype).element_size()
    buffer = mmap.mmap(-1, max(nbytes, 1), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    tensor = torch.frombuffer(buffer, dtype=dtype, count=count).view(shape)
    return tensor, buffer


class KVCache:
    """Keys and values of one run.

    ``k_cache``/``v_cache``: (layers, slots, kv_heads, capacity, head_dim), a sequence's own positions
    (after its shared prefix, or its whole sequence in static mode); ``k_arena``/``v_arena``: (layers,
    prefix tokens, kv_heads, head_dim), every shared prefix once. ``slot_cache`` passes slot caches made
    elsewhere (static mode) instead of allocating them.
    """

    def __init__(
        self,
        layers: int,
        slots: int,
        kv_heads: int,
        capacity: int,
        head_dim: int,
        arena_tokens: int,
        dtype: torch.dtype,
        device: torch.device,
        slot_cache: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        arena_shape = (layers, max(arena_tokens, 1), kv_heads, head_dim)
        if slot_cache is not None:
            self.k_cache, self.v_cache = slot_cache
            self._slot_buffers = [None, None]
        else:
            shape = (layers, slots, kv_heads, capacity, head_dim)
            self.k_cache, k_buffer = lazy_zeros(shape, dtype, device)
            self.v_cache, v_buffer = lazy_zeros(shape, dtype, device)
            self._slot_buffers = [k_buffer, v_buffer]
        self.k_arena, k_buffer = lazy_zeros(arena_shape, dtype, device)
        self.v_arena, v_buffer = lazy_zeros(arena_shape, dtype, device)
        self._buffers = [*self._slot_buffers, k_buffer, v_buffer]

    def move(self, source: int, target: int, length: int) -> None:
        """Copy slot ``source``'s first ``length`` cache positions to slot ``target``."""
        self.k_cache[:, target, :, :length] = self.k_cache[:, source, :, :length]
        self.v_cache[:, target, :, :length] = self.v_cache[:, source, :, :length]

    def clear(self, slot: int) -> None:
        """Hand ``slot``'s cache pages back to the system (they read as zeros again).

        A slot's pages stay committed after its sequence ends; clearing them before a new sequence moves
        in keeps the memory in use near the tokens really held instead of each slot's longest occupant.
        Only for the CPU's lazily committed caches (see :func:`lazy_zeros`); elsewhere nothing happens.
        """
        for tensor, buffer in zip((self.k_cache, self.v_cache), self._slot_buffers, strict=True):
            if buffer is None or not hasattr(buffer, "madvise"):
                continue
            layers, slots = tensor.shape[:2]
            region = tensor[0, 0].numel() * tensor.element_size()  # one layer's part of one slot
            for layer in range(layers):
                start = (layer * slots + slot) * region
                first = -(-start // mmap.PAGESIZE) * mmap.PAGESIZE  # whole pages inside the region only
                last = (start + region) // mmap.PAGESIZE * mmap.PAGESIZE
                if last > first:
                    buffer.madvise(mmap.MADV_DONTNEED, first, last - first)

    def close(self) -> None:
        """Unmap the CPU's buffers (the cache is not used afterwards)."""
        del self.k_cache, self.v_cache, self.k_arena, self.v_arena
        for buffer in self._buffers:
            if buffer is not None:
                buffer.close()


@dataclass(eq=False)
class Prefix:
    """A prompt prefix shared by several requests; its KV is computed once, freed after its last user."""

    ids: list[int]
    members: int
    offset: int = 0  # first token in the prefix arena
    ready: bool = False
    k: torch.Tensor | None = None  # (layers, kv_heads, len(ids), head_dim) view into the arena
    v: torch.Tensor | None = None


@dataclass(eq=False)
class Prefill:
    """Tokens to run in one prefill pass and where their keys/values go."""

    tokens: list[int]
    start: int  # absolute position of the first token
    k_target: torch.Tensor  # (layers, kv_heads, >= len(tokens), head_dim)
    v_target: torch.Tensor
    context: Prefix | None = None
    slot: int | None = None  # static mode: the cache slot the targets are (the whole sequence)
