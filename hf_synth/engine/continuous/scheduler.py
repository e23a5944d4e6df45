"""Which request holds which KV-cache slot, and when: the scheduling of one continuous-batching run.

Prompts are admitted in token order, so that prompts which share a prefix (a chat-template header, a
template preamble) run together: :func:`plan_prefixes` finds the runs that share one, whose keys and
values are then computed once (in the cache's arena) instead of per prompt. A finished sequence's slot
is refilled with the next waiting prompt at once, so the batch stays full; when no prompt waits, live
slots are moved to the front so that every step works on a dense block. In static mode every slot holds
its whole sequence: a shared prefix is still computed once, then copied into each member's slot, so a
decode step needs no per-prefix work.

:class:`Schedule` drives the batcher's public passes (``prefill``, ``decode``, its ``graphs.step`` in
static mode) and the sampler (:mod:`.sampler`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..engine_config import SamplingParams
from .kv_cache import KVCache, Prefill, Prefix
from .sampler import choose, uniforms

#: Prefixes shorter than this are recomputed rather than copied (copying has a fixed cost).
MIN_SHARED_PREFIX = 8


def plan_prefixes(prompts: Sequence[Sequence[int]], min_length: int = MIN_SHARED_PREFIX, window: int = 256):
    """Split prompts into runs (in token order) that share a prefix, maximising the tokens saved.

    Returns ``(order, runs)``: ``order`` sorts the prompts by token ids; each run is ``(start, stop,
    prefix_length)`` over ``order``. A prefix is always shorter than each of its prompts (the last prompt
    token must be run to get the first logits). Runs whose prefix is shorter than ``min_length`` get 0.
    """
    order = sorted(range(len(prompts)), key=lambda i: list(prompts[i]))
    n = len(order)
    lcp = [0] * n
    for j in range(1, n):
        a, b = prompts[order[j - 1]], prompts[order[j]]
        lcp[j] = common_prefix(a, b, limit=min(len(a), len(b)) - 1)
    best = [0] * (n + 1)
    cut = list(range(-1, n))  # cut[j]: where the run ending before j starts (default: a single prompt)
    for j in range(1, n + 1):
        best[j], cut[j] = best[j - 1], j - 1
        shared = None
        for i in range(j - 2, max(-1, j - 1 - window), -1):
            shared = lcp[i + 1] if shared is None else min(shared, lcp[i + 1])
            if shared < min_length:
                break
            saved = best[i] + (j - 1 - i) * shared
            if saved > best[j]:
                best[j], cut[j] = saved, i
    runs = []
    j = n
    while j > 0:
        i = cut[j]
        prefix = min(lcp[i + 1 : j]) if j - i >= 2 else 0
        runs.append((i, j, prefix if prefix >= min_length else 0))
        j = i
    return order, runs[::-1]


class Schedule:
    """The state of one :meth:`~.batcher.ContinuousBatcher.run`: which request holds which slot, the queue.

    In static mode every slot holds its whole sequence: a shared prefix is still computed once (in the
    arena), then copied into each member's slot, so a decode step needs no per-prefix work.
    """

    def __init__(self, batcher, requests, spec: SamplingParams, on_finish) -> None:
        self.b = batcher
        self.inline = batcher.static
        self.prefill_tokens = batcher.prefill_chunk
        self.requests = requests
        self.spec = spec
        self.on_finish = on_finish
        order, runs = plan_prefixes([r.prompt_ids for r in requests])
        self.prefix_of: list[Prefix | None] = [None] * len(requests)
        for start, stop, length in runs:
            if length:
                prefix = Prefix(ids=list(requests[order[start]].prompt_ids[:length]), members=stop - start)
                for index in order[start:stop]:
                    self.prefix_of[index] = prefix
        self.local_capacity = spec.max_new_tokens + max(
            len(r.prompt_ids) - (len(p.ids) if p and not self.inline else 0)
            for r, p in zip(requests, self.prefix_of, strict=True)
        )
        self.prefixes = list({id(p): p for p in self.prefix_of if p is not None}.values())
        self.arena_tokens = 0
        for prefix in self.prefixes:
            prefix.offset = self.arena_tokens
            self.arena_tokens += len(prefix.ids)
        self.waiting = list(reversed(order))  # pop() gives the next prompt in token order
        self.occupant: list[int] = []  # request index per live slot (slots 0..live-1)
        self.generators: list[torch.Generator] = []

    def place_prefixes(self, k_arena: torch.Tensor, v_arena: torch.Tensor) -> None:
        """Point every shared prefix at its rows of the arena (layers, arena_tokens, kv_heads, head_dim)."""
        for prefix in self.prefixes:
            span = slice(prefix.offset, prefix.offset + len(prefix.ids))
            prefix.k = k_arena[:, span].transpose(1, 2)
            prefix.v = v_arena[:, span].transpose(1, 2)

    # ------------------------------------------------------------------ admission
    def admit(self, pairs: list[tuple[int, int]]) -> None:
        """Prefill requests into slots (``(slot, request index)`` pairs) and sample their first tokens."""
        b = self.b
        fresh = []
        for _, index in pairs:
            prefix = self.prefix_of[index]
            if prefix is not None and not prefix.ready:
                prefix.ready = True
                fresh.append(Prefill(prefix.ids, 0, prefix.k, prefix.v))
                b.reused_prefix_tokens -= len(prefix.ids)  # computed once, counted as reused by every user
        for chunk in self._chunks(fresh):
            b.prefill(chunk, self.cache)
        items = []
        for slot, index in pairs:
            if slot < len(self.occupant):  # a refill: the previous sequence's pages go first
                self.cache.clear(slot)
            prefix = self.prefix_of[index]
            start = len(prefix.ids) if prefix else 0
            ids = self.requests[index].prompt_ids
            k_slot, v_slot = self.cache.k_cache[:, slot], self.cache.v_cache[:, slot]
            if self.inline:  # the slot holds the whole sequence: the prefix first, then the prompt's own part
                if prefix is not None:
                    k_slot[:, :, :start] = prefix.k
                    v_slot[:, :, :start] = prefix.v
                k_slot, v_slot = k_slot[:, :, start:], v_slot[:, :, start:]
            items.append(Prefill(ids[start:], start, k_slot, v_slot, prefix, slot if self.inline else None))
            b.reused_prefix_tokens += start
        logits = torch.cat([b.prefill(chunk, self.cache) for chunk in self._chunks(items)])
        seen = None
        if self.seen is not None:
            for slot, index in pairs:
                self.seen[slot].zero_()
                self.seen[slot, torch.tensor(self.requests[index].prompt_ids, device=b.device)] = True
            seen = self.seen[torch.tensor([slot for slot, _ in pairs], device=b.device)]
        generators = [torch.Generator(device="cpu").manual_seed(self.requests[i].seed) for _, i in pairs]
        tokens = choose(logits, self.spec, seen, uniforms(self.spec, generators), b.sync_free).tolist()
        for (slot, index), item, generator, token in zip(pairs, items, generators, tokens, strict=True):
            request = self.requests[index]
            request.tokens = [token]
            request.finished_by_stop = False
            if slot == len(self.occupant):
                self.occupant.append(index)
                self.generators.append(generator)
            else:
                self.occupant[slot], self.generators[slot] = index, generator
            self.positions[slot] = len(request.prompt_ids)
            self.local[slot] = len(request.prompt_ids) if self.inline else len(item.tokens)
            self.next_tokens[slot] = token
            if self.seen is not None:
                self.seen[slot, token] = True

    def _chunks(self, items: list[Prefill]):
        chunk, size = [], 0
        for item in items:
            if chunk and size + len(item.tokens) > self.prefill_tokens:
                yield chunk
                chunk, size = [], 0
            chunk.append(item)
            size += len(item.tokens)
        if chunk:
            yield chunk

    # ------------------------------------------------------------------ retirement
    def done(self, slot: int) -> bool:
        request = self.requests[self.occupant[slot]]
        if request.tokens[-1] in self.b.eos_ids:
            request.finished_by_stop = True
            return True
        return len(request.tokens) >= self.spec.max_new_tokens

    def release(self, slot: int) -> None:
        index = self.occupant[slot]
        prefix = self.prefix_of[index]
        if prefix is not None:
            prefix.members -= 1  # its arena rows are not reused within this run
        if self.on_finish is not None:
            self.on_finish(self.requests[index])

    def filled(self, slot: int) -> int:
        """Cache positions ``slot`` holds (``local[slot]``, known on the host: no device read)."""
        index = self.occupant[slot]
        request, prefix = self.requests[index], self.prefix_of[index]
        shared = len(prefix.ids) if prefix is not None and not self.inline else 0
        return len(request.prompt_ids) - shared + len(request.tokens) - 1

    def remove(self, slot: int) -> None:
        """Free ``slot`` by moving the last live slot into it."""
        last = len(self.occupant) - 1
        if slot != last:
            self.cache.clear(slot)  # the finished sequence's pages beyond what moves in are handed back too
            self.cache.move(last, slot, self.filled(last))
            for tensor in (self.positions, self.local, self.next_tokens):
                tensor[slot] = tensor[last]
            if self.seen is not None:
                self.seen[slot] = self.seen[last]
            self.occupant[slot], self.generators[slot] = self.occupant[last], self.generators[last]
        self.cache.clear(last)
        self.occupant.pop()
        self.generators.pop()

    def turn_over(self) -> None:
        """Retire finished sequences: refill their slots from the queue, or compact the live block."""
        while True:
            finished = [slot for slot in range(len(self.occupant)) if self.done(slot)]
            if not finished:
                return
            for slot in finished:
                self.release(slot)
            refill = finished[: len(self.waiting)]
            for slot in sorted(finished[len(refill) :], reverse=True):
                self.remove(slot)
            if refill:
                self.admit([(slot, self.waiting.pop()) for slot in refill])

    # ------------------------------------------------------------------ the loop
    def run(self, slots: int, cache: KVCache) -> None:
        """Decode until every request is done, in ``slots`` slots of ``cache``."""
        b = self.b
        self.cache = cache
        device = b.device
        self.positions = torch.zeros(slots, dtype=torch.long, device=device)
        self.local = torch.zeros(slots, dtype=torch.long, device=device)
        self.next_tokens = torch.zeros(slots, dtype=torch.long, device=device)
        self.seen = None
        if self.spec.repetition_penalty != 1.0:
            self.seen = torch.zeros(slots, b.vocab_size, dtype=torch.bool, device=device)
        first = min(slots, len(self.waiting))
        self.admit([(slot, self.waiting.pop()) for slot in range(first)])
        while True:
            if b.governor is not None:
                b.governor.update()
            self.turn_over()
            live = len(self.occupant)
            if not live:
                return
            if self.inline:
                length = max(
                    len(self.requests[i].prompt_ids) + len(self.requests[i].tokens) for i in self.occupant
                )
                logits = b.graphs.step(self.next_tokens, self.positions, live, length)
            else:
                rows_by_prefix: dict[int, tuple[Prefix, list[int]]] = {}
                for slot, index in enumerate(self.occupant):
                    prefix = self.prefix_of[index]
                    if prefix is not None:
                        rows_by_prefix.setdefault(id(prefix), (prefix, []))[1].append(slot)
                groups = [(p, torch.tensor(rows, device=device)) for p, rows in rows_by_prefix.values()]
                logits = b.decode(
                    self.next_tokens[:live], self.positions[:live], self.local[:live], groups, self.cache
                )
            seen = self.seen[:live] if self.seen is not None else None
            chosen = choose(logits, self.spec, seen, uniforms(self.spec, self.generators), b.sync_free)
            self.positions[:live] += 1
            self.local[:live] += 1
            self.next_tokens[:live] = chosen
            if self.seen is not None:
                self.seen[torch.arange(live, device=device), chosen] = True
            for slot, token in enumerate(chosen.tolist()):
                self.requests[self.occupant[slot]].tokens.append(token)


def common_prefix(a: Sequence[int], b: Sequence[int], limit: int) -> int:
    n = min(len(a), len(b), limit)
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
