"""The model's forward passes as the continuous batcher runs them: prefill and decode over packed weights.

Every pass runs the decoder layers through one loop, :meth:`ModelStep.layers_forward`: RMSNorm (with the
residual of the previous layer added first), the fused q/k/v projection, attention, the output
projection and its residual, RMSNorm, the fused gate/up projection, SiLU and the down projection (whose
residual the next layer adds). What differs between the passes is only attention — where the new keys
and values are written and what each query attends — so each pass hands the loop its own ``attend``:

* :meth:`ModelStep.prefill`: several prompts (or shared prefixes) in one pass, each attending its shared
  prefix and its own tokens causally; :meth:`ModelStep.prefill_padded` for prompts that fill static-mode
  slots, in one padded attention call;
* :meth:`ModelStep.decode`: one token per slot, attending its shared prefix (in the arena) and its slot,
  with the compiled CPU kernels (:mod:`..cpu.decode_attention`, :mod:`..cpu.fused`) in float32 on the
  CPU and PyTorch attention elsewhere;
* :meth:`ModelStep.step_static`: a fixed-shape step (static mode): every slot holds its whole sequence
  and attends it up to a length bucket; no host synchronisation, so :mod:`.cuda_graphs` can capture it.

With the compiled kernels the residual addition and the norm after it run as one loop, and so do the
rotary embedding and the cache write.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from ..cpu.decode_attention import DecodeAttention
from ..cpu.fused import add_rms_norm, rope, rope_store
from .kv_cache import KVCache, Prefill
from .packing import Layer

#: A padded prefill pass holds at most this many (query, key) pairs per layer (its mask and the padded
#: attention's work); larger groups of prompts are split.
PADDED_PREFILL_PAIRS = 1 << 26

#: ``attend(layer index, layer, qkv)`` -> the attention output (rows, heads * head_dim) of one layer,
#: from the fused q/k/v projection's output; it writes the new keys and values where its pass keeps them.
Attend = Callable[[int, Layer, torch.Tensor], torch.Tensor]


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    # The operations of transformers' LlamaRMSNorm, in its order.
    dtype = x.dtype
    x = x.to(torch.float32)
    variance = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(variance + eps)).to(dtype)


def fused_rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    # torch's rms_norm computes the same steps (float32 inside, cast back, times the weight) in one kernel
    # on CUDA; transformers' layer is eight.
    return F.rms_norm(x, weight.shape, weight, eps)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return (x * cos) + (rotated * sin)


def cuda_attention_backends() -> list | None:
    """SDPA's flash, memory-efficient and math kernels (the ones that need no per-shape plan), or
    ``None`` where this torch cannot restrict SDPA (it then chooses itself)."""
    try:
        from torch.nn.attention import SDPBackend
    except ImportError:  # pragma: no cover - torch < 2.3
        return None
    return [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


def attention_kernels(backends: list | None):
    """A context in which SDPA uses only ``backends`` (nothing changes for ``None``)."""
    if not backends:
        return contextlib.nullcontext()
    from torch.nn.attention import sdpa_kernel

    return sdpa_kernel(backends)


def attention_with_lse(q, k, v, mask, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention output and log-sum-exp of the scores (needed to merge attention over split keys).

    ``q``: (batch, heads, queries, dim), ``k``/``v``: (batch, heads, keys, dim), ``mask``: additive, in
    ``q``'s dtype, broadcastable to (batch, heads, queries, keys), or ``None``.
    """
    if q.device.type == "cpu":
        out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            q, k, v, 0.0, False, attn_mask=mask, scale=scale
        )
        return out, lse
    scores = torch.matmul(q, k.transpose(-1, -2)).float() * scale
    if mask is not None:
        scores = scores + mask
    lse = torch.logsumexp(scores, dim=-1)
    out = torch.matmul(torch.exp(scores - lse.unsqueeze(-1)).to(v.dtype), v)
    return out, lse


def padded_groups(items: Sequence[Prefill], budget: int | None = None):
    """Consecutive groups of ``items`` whose padded (items x longest queries x longest keys) fits ``budget``
    (default :data:`PADDED_PREFILL_PAIRS`; a single item always forms a group)."""
    budget = PADDED_PREFILL_PAIRS if budget is None else budget
    group: list[Prefill] = []
    width = keys = 0
    for item in items:
        n = len(item.tokens)
        w, k = max(width, n), max(keys, item.start + n)
        if group and (len(group) + 1) * w * k > budget:
            yield group
            group, w, k = [], n, item.start + n
        group.append(item)
        width, keys = w, k
    if group:
        yield group


class ModelStep:
    """The forward passes of a Llama-family model over its packed weights (see the module docstring).

    The weights and settings are set by :class:`~.batcher.ContinuousBatcher` (a ``ModelStep``): ``embed``,
    ``layers`` (:class:`~.packing.Layer`), ``lm_head``, ``norm_w``/``norm_eps``, ``rotary``, the head
    layout, ``use_kernel`` (the compiled CPU kernels), ``batched_prefill``, ``graphs`` (static mode's
    :class:`~.cuda_graphs.StepGraphs`, whose rotary tables and caches the static passes use) and
    ``_norm`` (the RMSNorm implementation).
    """

    # ------------------------------------------------------------------ the one layer loop
    def layers_forward(self, x: torch.Tensor, attend: Attend) -> torch.Tensor:
        """Run hidden states ``x`` (rows, hidden) through every decoder layer (``x`` is updated in place
        and returned); ``attend`` is the pass's attention (see :data:`Attend`)."""
        kernel = self.use_kernel
        h = torch.empty_like(x) if kernel else None
        delta = None  # the previous layer's MLP output: its residual is added before the next norm
        for i, layer in enumerate(self.layers):
            if kernel:
                add_rms_norm(x, delta, layer.ln_in, layer.eps_in, h)
            else:
                if delta is not None:
                    x.add_(delta)
                h = self._norm(x, layer.ln_in, layer.eps_in)
            out = attend(i, layer, layer.qkv(h))
            if kernel:
                add_rms_norm(x, layer.o(out), layer.ln_post, layer.eps_post, h)
            else:
                x.add_(layer.o(out))
                h = self._norm(x, layer.ln_post, layer.eps_post)
            gate, up = layer.gate_up(h).split([layer.intermediate, layer.intermediate], dim=-1)
            delta = layer.down(F.silu(gate).mul_(up))
        return x.add_(delta)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self._norm(x, self.norm_w, self.norm_eps)).float()

    def rope(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos/sin of shape (rows, 1, head_dim) for a 1-D tensor of positions."""
        if self.graphs is not None:  # static mode: the tables hold every position of the cache
            return self.graphs.rope(positions)
        cos, sin = self.rotary(self.embed[:1], positions.view(1, -1))
        return cos[0].unsqueeze(1), sin[0].unsqueeze(1)

    def split_rotate(self, layer: Layer, qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        """Queries, keys and values of a fused projection's output, queries and keys rotated."""
        if self.use_kernel:  # one compiled loop for the rotation
            return rope(qkv, cos[:, 0], sin[:, 0], self.n_heads, self.n_kv)
        rows = qkv.shape[0]
        qk, v = qkv.split([layer.q_size + layer.kv_size, layer.kv_size], dim=-1)
        # Queries and keys rotate together: one set of element-wise operations instead of two.
        qk = rotate(qk.view(rows, self.n_heads + self.n_kv, self.head_dim), cos, sin)
        q, k = qk.split([self.n_heads, self.n_kv], dim=1)
        return q, k, v.view(rows, self.n_kv, self.head_dim)

    def rotate_store(self, i: int, layer: Layer, qkv: torch.Tensor, cos, sin, cache, rows, columns):
        """:meth:`split_rotate`, then layer ``i``'s new keys and values written into ``cache`` (a
        :class:`KVCache`, or static mode's graphs) at (``rows``, ``columns``). Returns the queries and the
        layer's key and value caches."""
        q, k, v = self.split_rotate(layer, qkv, cos, sin)
        k_cache, v_cache = cache.k_cache[i], cache.v_cache[i]
        k_cache[rows, :, columns] = k
        v_cache[rows, :, columns] = v
        return q, k_cache, v_cache

    # ------------------------------------------------------------------ prefill
    def prefill(self, items: Sequence[Prefill], cache: KVCache) -> torch.Tensor:
        """Run several prompts (or shared prefixes) in one pass; return each item's last-token logits.

        Every item's tokens are packed into one matrix for the projections; attention runs per item over
        its shared prefix (``item.context``, already computed) and its own tokens, causally, or, with
        ``batched_prefill`` for items that fill cache slots, once for all of them (:meth:`prefill_padded`).
        """
        if self.batched_prefill and len(items) > 1 and all(item.slot is not None for item in items):
            return torch.cat([self.prefill_padded(group, cache) for group in padded_groups(items)])
        device = self.device
        sizes = [len(item.tokens) for item in items]
        ids = torch.tensor([t for item in items for t in item.tokens], device=device)
        positions = torch.cat(
            [
                torch.arange(item.start, item.start + n, device=device)
                for item, n in zip(items, sizes, strict=True)
            ]
        )
        cos, sin = self.rope(positions)
        masks = []
        for item, n in zip(items, sizes, strict=True):
            visible = torch.ones(n, item.start + n, dtype=torch.bool, device=device).tril(diagonal=item.start)
            masks.append(
                torch.zeros(visible.shape, dtype=self.dtype, device=device).masked_fill_(
                    ~visible, float("-inf")
                )
            )
        gqa = self.n_kv != self.n_heads

        def attend(i: int, layer: Layer, qkv: torch.Tensor) -> torch.Tensor:
            q, k, v = self.split_rotate(layer, qkv, cos, sin)
            outputs = []
            offset = 0
            for item, n, mask in zip(items, sizes, masks, strict=True):
                k_item = k[offset : offset + n].transpose(0, 1)
                v_item = v[offset : offset + n].transpose(0, 1)
                item.k_target[i, :, :n] = k_item
                item.v_target[i, :, :n] = v_item
                if item.context is not None:
                    k_item = torch.cat([item.context.k[i], k_item], dim=1)
                    v_item = torch.cat([item.context.v[i], v_item], dim=1)
                out = F.scaled_dot_product_attention(
                    q[offset : offset + n].transpose(0, 1).unsqueeze(0),
                    k_item.unsqueeze(0),
                    v_item.unsqueeze(0),
                    attn_mask=mask,
                    scale=layer.scaling,
                    enable_gqa=gqa,
                )
                outputs.append(out[0].transpose(0, 1).reshape(n, -1))
                offset += n
            return torch.cat(outputs) if len(outputs) > 1 else outputs[0]

        x = self.layers_forward(F.embedding(ids, self.embed), attend)
        self.prefill_tokens += sum(sizes)
        last = torch.tensor(sizes, device=device).cumsum(0) - 1
        return self.logits(x.index_select(0, last))

    def prefill_padded(self, items: Sequence[Prefill], cache: KVCache) -> torch.Tensor:
        """:meth:`prefill` of items whose targets are whole-sequence cache slots (static mode): each layer
        writes every item's keys and values into its slot with one indexed store, then one attention call
        covers all items, their queries padded to the longest item and each attending its own slot (the
        shared prefix already copied there) up to its position."""
        device = self.device
        sizes = [len(item.tokens) for item in items]
        width = max(sizes)
        keys = max(item.start + n for item, n in zip(items, sizes, strict=True))
        ids = torch.tensor([t for item in items for t in item.tokens], device=device)
        positions = torch.tensor(
            [item.start + t for item, n in zip(items, sizes, strict=True) for t in range(n)], device=device
        )
        token_slots = torch.tensor(
            [item.slot for item, n in zip(items, sizes, strict=True) for _ in range(n)], device=device
        )
        item_slots = torch.tensor([item.slot for item in items], device=device)
        dest = torch.tensor([j * width + t for j, n in enumerate(sizes) for t in range(n)], device=device)
        starts = torch.tensor([item.start for item in items], device=device)
        query_positions = starts.unsqueeze(1) + torch.arange(width, device=device)  # (items, width)
        # Query t of an item sees its slot's keys up to its own position (padded rows are dropped).
        visible = torch.arange(keys, device=device).view(1, 1, keys) <= query_positions.unsqueeze(2)
        mask = visible.unsqueeze(1)
        cos, sin = self.rope(positions)
        group = self.n_heads // self.n_kv
        n_items = len(items)

        def attend(i: int, layer: Layer, qkv: torch.Tensor) -> torch.Tensor:
            q, k_cache, v_cache = self.rotate_store(i, layer, qkv, cos, sin, cache, token_slots, positions)
            q_pad = q.new_zeros(n_items * width, self.n_heads, self.head_dim).index_copy_(0, dest, q)
            q_pad = q_pad.view(n_items, width, self.n_heads, self.head_dim).transpose(1, 2)
            k_items = k_cache[:, :, :keys].index_select(0, item_slots)
            v_items = v_cache[:, :, :keys].index_select(0, item_slots)
            if group > 1:  # explicit heads: the memory-efficient kernel takes a mask but not GQA
                k_items = k_items.repeat_interleave(group, dim=1)
                v_items = v_items.repeat_interleave(group, dim=1)
            out = F.scaled_dot_product_attention(q_pad, k_items, v_items, attn_mask=mask, scale=layer.scaling)
            return out.transpose(1, 2).reshape(n_items * width, -1).index_select(0, dest)

        x = self.layers_forward(F.embedding(ids, self.embed), attend)
        self.prefill_tokens += sum(sizes)
        last = torch.tensor(sizes, device=device).cumsum(0) - 1
        return self.logits(x.index_select(0, last))

    # ------------------------------------------------------------------ decode
    def decode(
        self, tokens: torch.Tensor, positions: torch.Tensor, local: torch.Tensor, groups, cache: KVCache
    ) -> torch.Tensor:
        """One step for slots ``0..live-1``; the logits of each.

        ``positions`` are absolute (for the rotary embedding), ``local`` index the slot's own cache (after
        its shared prefix); ``groups`` pairs each live shared prefix with the rows (a tensor) that use it.
        """
        cos, sin = self.rope(positions)
        if self.use_kernel:
            attend = self._kernel_attention(cos, sin, local, groups, cache)
        else:
            attend = self._slot_attention(cos, sin, local, groups, cache)
        return self.logits(self.layers_forward(F.embedding(tokens, self.embed), attend))

    def _kernel_attention(self, cos, sin, local: torch.Tensor, groups, cache: KVCache) -> Attend:
        """Decode attention with the compiled CPU kernels: the rotation and the cache write in one loop,
        and attention that reads each row's prefix and slot once."""
        live = local.shape[0]
        offsets = torch.zeros(live, dtype=torch.long)
        prefix_lengths = torch.zeros(live, dtype=torch.long)
        for prefix, members in groups:
            offsets[members] = prefix.offset
            prefix_lengths[members] = len(prefix.ids)
        attention = DecodeAttention(
            local + 1, offsets, prefix_lengths, self.n_kv, self.n_heads // self.n_kv, self.head_dim
        )
        cos, sin = cos[:, 0], sin[:, 0]
        k_cache, v_cache, k_arena, v_arena = cache.k_cache, cache.v_cache, cache.k_arena, cache.v_arena

        def attend(i: int, layer: Layer, qkv: torch.Tensor) -> torch.Tensor:
            q = rope_store(qkv, cos, sin, k_cache[i], v_cache[i], local, self.n_heads, self.n_kv)
            return attention(q, k_cache[i], v_cache[i], k_arena[i], v_arena[i], layer.scaling).view(live, -1)

        return attend

    def _slot_attention(self, cos, sin, local: torch.Tensor, groups, cache: KVCache) -> Attend:
        """Decode attention in PyTorch: each row attends its slot, then its shared prefix, and the two
        parts are merged by their log-sum-exp (:meth:`_merge_prefixes`)."""
        live = local.shape[0]
        length = int(local.max()) + 1
        rows = torch.arange(live, device=self.device)
        hidden = torch.arange(length, device=self.device) > local.unsqueeze(1)
        mask = torch.zeros(live, 1, 1, length, dtype=self.dtype, device=self.device)
        mask.masked_fill_(hidden.view(live, 1, 1, length), float("-inf"))
        # The query heads that share a key/value head act as a query length of `group`.
        shape = (live, self.n_kv, self.n_heads // self.n_kv, self.head_dim)

        def attend(i: int, layer: Layer, qkv: torch.Tensor) -> torch.Tensor:
            q, k_cache, v_cache = self.rotate_store(i, layer, qkv, cos, sin, cache, rows, local)
            q = q.reshape(shape)
            out, lse = attention_with_lse(
                q, k_cache[:live, :, :length], v_cache[:live, :, :length], mask, layer.scaling
            )
            if groups:
                out = self._merge_prefixes(i, q, out, lse, groups, layer.scaling)
            return out.reshape(live, -1)

        return attend

    def _merge_prefixes(self, layer: int, q, out, lse, groups, scaling: float) -> torch.Tensor:
        """Attend the rows of each group to their shared prefix and merge with the slot-local part."""
        live, n_kv, group, dim = q.shape
        prefix_out = torch.zeros_like(out)
        prefix_lse = torch.full_like(lse, float("-inf"))
        for prefix, rows in groups:
            n = rows.shape[0]
            q_rows = q.index_select(0, rows).permute(1, 0, 2, 3).reshape(1, n_kv, n * group, dim)
            o, s = attention_with_lse(
                q_rows, prefix.k[layer].unsqueeze(0), prefix.v[layer].unsqueeze(0), None, scaling
            )
            prefix_out.index_copy_(0, rows, o.view(n_kv, n, group, dim).permute(1, 0, 2, 3))
            prefix_lse.index_copy_(0, rows, s.view(n_kv, n, group).permute(1, 0, 2))
        top = torch.maximum(lse, prefix_lse)
        w_local = torch.exp(lse - top).unsqueeze(-1)
        w_prefix = torch.exp(prefix_lse - top).unsqueeze(-1)
        # The weights are float32 (log-sum-exp); the merged output goes on in the model's dtype.
        merged = (out.float() * w_local + prefix_out.float() * w_prefix) / (w_local + w_prefix)
        return merged.to(out.dtype)

    def step_static(self, tokens: torch.Tensor, positions: torch.Tensor, length: int) -> torch.Tensor:
        """One fixed-shape decode step (static mode): ``tokens``/``positions`` of the first ``rows`` slots.

        Every slot holds its whole sequence, so a row writes its new key/value at its position and attends
        the cache up to ``length`` (a bucket at least as long as every row, the rest masked). No host
        synchronisation, no allocation that depends on values: the step can be captured as a CUDA graph.
        """
        rows = tokens.shape[0]
        graphs = self.graphs
        cos, sin = graphs.rope(positions)
        visible = graphs.key_index[:length].unsqueeze(0) <= positions.unsqueeze(1)
        mask = visible.view(rows, 1, 1, length)
        row_index = graphs.row_index[:rows]
        # The query heads that share a key/value head act as a query length of `group`.
        shape = (rows, self.n_kv, self.n_heads // self.n_kv, self.head_dim)

        def attend(i: int, layer: Layer, qkv: torch.Tensor) -> torch.Tensor:
            q, k_cache, v_cache = self.rotate_store(i, layer, qkv, cos, sin, graphs, row_index, positions)
            out = F.scaled_dot_product_attention(
                q.reshape(shape),
                k_cache[:rows, :, :length],
                v_cache[:rows, :, :length],
                attn_mask=mask,
                scale=layer.scaling,
            )
            return out.reshape(rows, -1)

        return self.logits(self.layers_forward(F.embedding(tokens, self.embed), attend))
