"""The element-wise steps of a decode layer fused into single compiled loops (CPU, float32, numba).

A decode step works on a few dozen rows, so PyTorch's per-operation overhead (a few microseconds per
call, about 35 calls per layer) costs as much as the arithmetic. These kernels do the same arithmetic in
one call each:

* :func:`add_rms_norm`: the residual addition and the RMSNorm that follows it (``x += delta``, then
  ``weight * x / sqrt(mean(x**2) + eps)``, as transformers' ``LlamaRMSNorm`` computes it in float32);
* :func:`rope` (prefill): the rotary embedding of queries and keys (``x * cos + rotate_half(x) * sin``);
* :func:`rope_store` (decode): the same, plus the new keys and values written into each row's KV-cache
  slot at its position and the queries laid out per key/value head for
  :class:`~hf_synth.engine.cpu.decode_attention.DecodeAttention`.

Results equal PyTorch's up to float rounding (the tests compare both). Where these kernels can run is
:func:`hf_synth.engine.cpu.decode_attention.available` (the same conditions: numba, CPU, float32).
"""

from __future__ import annotations

import numpy as np
import torch

try:
    from numba import njit
except ImportError:  # pragma: no cover - numba is a dependency; guard for stripped installs
    njit = None


if njit is not None:

    @njit(fastmath=True, cache=True)
    def _rms_norm(x, weight, eps, out):  # pragma: no cover - compiled
        rows, width = x.shape
        for r in range(rows):
            total = np.float32(0.0)
            for i in range(width):
                total += x[r, i] * x[r, i]
            scale = np.float32(1.0) / np.sqrt(total / np.float32(width) + eps)
            for i in range(width):
                out[r, i] = weight[i] * (x[r, i] * scale)

    @njit(fastmath=True, cache=True)
    def _add_rms_norm(x, delta, weight, eps, out):  # pragma: no cover - compiled
        for r in range(x.shape[0]):
            for i in range(x.shape[1]):
                x[r, i] += delta[r, i]
        _rms_norm(x, weight, eps, out)

    @njit(fastmath=True, cache=True)
    def _rotate_into(qkv, r, base, cos, sin, out, o1, o2):  # pragma: no cover - compiled
        """out[o1, o2] = the head at qkv[r, base:base + dim], rotated (``x*cos + rotate_half(x)*sin``)."""
        half = cos.shape[1] // 2
        for i in range(half):
            a = qkv[r, base + i]
            b = qkv[r, base + half + i]
            out[o1, o2, i] = a * cos[r, i] - b * sin[r, i]
            out[o1, o2, half + i] = b * cos[r, half + i] + a * sin[r, half + i]

    @njit(fastmath=True, cache=True)
    def _rope(qkv, cos, sin, n_heads, n_kv, q_out, k_out):  # pragma: no cover - compiled
        dim = cos.shape[1]
        for r in range(qkv.shape[0]):
            for h in range(n_heads):
                _rotate_into(qkv, r, h * dim, cos, sin, q_out, r, h)
            for h in range(n_kv):
                _rotate_into(qkv, r, (n_heads + h) * dim, cos, sin, k_out, r, h)

    @njit(fastmath=True, cache=True)
    def _rope_store(qkv, cos, sin, k_cache, v_cache, local, n_heads, n_kv, q_out):  # pragma: no cover
        dim = cos.shape[1]
        group = n_heads // n_kv
        v_base = (n_heads + n_kv) * dim
        for r in range(qkv.shape[0]):
            at = local[r]
            for h in range(n_heads):
                _rotate_into(qkv, r, h * dim, cos, sin, q_out[r], h // group, h % group)
            for h in range(n_kv):
                _rotate_into(qkv, r, (n_heads + h) * dim, cos, sin, k_cache[r], h, at)
                for i in range(dim):
                    v_cache[r, h, at, i] = qkv[r, v_base + h * dim + i]


def rope(
    qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, n_heads: int, n_kv: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split a fused projection into rotated queries (rows, n_heads, dim), rotated keys (rows, n_kv, dim)
    and values.

    Shapes as in :func:`rope_store`; the values are a view into ``qkv``.
    """
    rows, dim = cos.shape
    q = torch.empty(rows, n_heads, dim, dtype=qkv.dtype)
    k = torch.empty(rows, n_kv, dim, dtype=qkv.dtype)
    _rope(qkv.numpy(), cos.numpy(), sin.numpy(), n_heads, n_kv, q.numpy(), k.numpy())
    v = qkv[:, (n_heads + n_kv) * dim :].view(rows, n_kv, dim)
    return q, k, v


def add_rms_norm(
    x: torch.Tensor, delta: torch.Tensor | None, weight: torch.Tensor, eps: float, out: torch.Tensor
) -> torch.Tensor:
    """``x += delta`` (in place, skipped when ``delta`` is None), then ``out = RMSNorm(x) * weight``.

    All of shape (rows, hidden) except ``weight`` (hidden,); returns ``out``.
    """
    if delta is None:
        _rms_norm(x.numpy(), weight.numpy(), np.float32(eps), out.numpy())
    else:
        _add_rms_norm(x.numpy(), delta.numpy(), weight.numpy(), np.float32(eps), out.numpy())
    return out


def rope_store(
    qkv: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    local: torch.Tensor,
    n_heads: int,
    n_kv: int,
) -> torch.Tensor:
    """Rotate queries and keys, store keys and values in the cache, return the queries.

    Args:
        qkv: (rows, (n_heads + 2 * n_kv) * head_dim) fused projection output, queries first.
        cos, sin: (rows, head_dim) rotary tables at each row's position.
        k_cache, v_cache: (slots, n_kv, capacity, head_dim); row ``r`` writes slot ``r`` at ``local[r]``.
        local: (rows,) position inside each row's slot.

    Returns:
        Queries of shape (rows, n_kv, n_heads // n_kv, head_dim): the heads sharing a key/value head grouped.
    """
    rows, dim = cos.shape
    q = torch.empty(rows, n_kv, n_heads // n_kv, dim, dtype=qkv.dtype)
    _rope_store(
        qkv.numpy(),
        cos.numpy(),
        sin.numpy(),
        k_cache.numpy(),
        v_cache.numpy(),
        local.numpy(),
        n_heads,
        n_kv,
        q.numpy(),
    )
    return q
