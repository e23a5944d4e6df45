"""Decode-step attention on the CPU, compiled with numba.

One query token per sequence attends to its shared prompt prefix (in the prefix arena) followed by its
own keys (in its KV-cache slot), with one softmax over both (scores, then max, exponentials and
normalisation, then the weighted values: simple loops the compiler vectorises). Every row reads exactly its own length: no
padding to the longest row, no second pass to merge the prefix and the slot part, and rows that share a
prefix read it while it is still in the CPU cache. float32 only; other dtypes/devices use PyTorch's SDPA.
"""

from __future__ import annotations

import numpy as np
import torch

try:
    from numba import njit, prange
except ImportError:  # pragma: no cover - numba is a dependency; guard for stripped installs
    njit = None


def available(tensor: torch.Tensor) -> bool:
    """Whether the compiled kernel can run on tensors like ``tensor``."""
    return njit is not None and tensor.device.type == "cpu" and tensor.dtype == torch.float32


if njit is not None:

    @njit(parallel=True, fastmath=True, cache=True)
    def _kernel(
        q, k_slots, v_slots, lengths, k_arena, v_arena, offsets, prefix_lengths, scale, scratch, out
    ):  # pragma: no cover - compiled
        rows, kv_heads, group, dim = q.shape
        for job in prange(rows * kv_heads):
            row = job // kv_heads
            head = job % kv_heads
            n_prefix = prefix_lengths[row]
            first = offsets[row]
            total = n_prefix + lengths[row]
            scores = scratch[job]
            # Scores against the shared prefix, then the row's own keys; one softmax over both.
            for t in range(total):
                key = k_arena[first + t, head] if t < n_prefix else k_slots[row, head, t - n_prefix]
                for g in range(group):
                    acc = np.float32(0.0)
                    for i in range(dim):
                        acc += q[row, head, g, i] * key[i]
                    scores[g, t] = acc * scale
            for g in range(group):
                top = scores[g, 0]
                for t in range(1, total):
                    top = max(top, scores[g, t])
                norm = np.float32(0.0)
                for t in range(total):
                    e = np.exp(scores[g, t] - top)
                    scores[g, t] = e
                    norm += e
                inverse = np.float32(1.0) / norm
                for t in range(total):
                    scores[g, t] *= inverse
            for g in range(group):
                for i in range(dim):
                    out[row, head, g, i] = 0.0
            for t in range(total):
                value = v_arena[first + t, head] if t < n_prefix else v_slots[row, head, t - n_prefix]
                for g in range(group):
                    weight = scores[g, t]
                    for i in range(dim):
                        out[row, head, g, i] += weight * value[i]


def decode_attention(
    q: torch.Tensor,
    k_slots: torch.Tensor,
    v_slots: torch.Tensor,
    lengths: torch.Tensor,
    k_arena: torch.Tensor,
    v_arena: torch.Tensor,
    offsets: torch.Tensor,
    prefix_lengths: torch.Tensor,
    scale: float,
) -> torch.Tensor:
    """Attention output (rows, kv_heads, group, dim).

    Args:
        q: (rows, kv_heads, group, dim) queries; the query heads sharing a key/value head form the group.
        k_slots, v_slots: (slots, kv_heads, capacity, dim) per-sequence caches (row ``r`` uses slot ``r``).
        lengths: (rows,) keys held in each row's slot, the current token's included.
        k_arena, v_arena: (arena_tokens, kv_heads, dim) shared prefixes.
        offsets, prefix_lengths: (rows,) where each row's prefix starts in the arena and its length (0: none).
        scale: Score scaling (usually ``dim ** -0.5``).
    """
    out = torch.empty_like(q)
    rows, kv_heads, group, _ = q.shape
    longest = int((lengths + prefix_lengths).max())
    scratch = np.empty((rows * kv_heads, group, longest), dtype=np.float32)
    _kernel(
        q.numpy(),
        k_slots.numpy(),
        v_slots.numpy(),
        lengths.numpy(),
        k_arena.numpy(),
        v_arena.numpy(),
        offsets.numpy(),
        prefix_lengths.numpy(),
        np.float32(scale),
        scratch,
        out.numpy(),
    )
    return out
