"""Exact, fast greedy ROUGE-L novelty filtering of a whole corpus (compiled with numba).

Semantics are those of the Self-Instruct/Alpaca filter computed pairwise with ``rouge_score``: texts are
visited in order, and a text is kept only if its ROUGE-L F against *every* text kept before it is below
``threshold``. The kept set is identical to that reference; only the work differs:

1. **Length filter**: F <= 2·min(a, b)/(a + b), so a partner much shorter or longer cannot reach it.
2. **Prefix filter** (as in set-similarity joins): F_LCS <= F_unigram = 2·overlap/(a + b), where overlap
   is the multiset overlap. Items (token, k-th occurrence) are ordered rare-first over the corpus; any pair
   with overlap >= ``threshold``·(a + b)/2 shares an item within the first a - ceil(a·t/(2-t)) + 1 items
   of each side, so only those prefixes are indexed and probed.
3. **Overlap bound**: the exact multiset overlap of each surviving pair (merge of sorted item lists).
4. **LCS** (dynamic programming, compiled) only for pairs that pass all bounds, then the F-measure with
   the very float operations ``rouge_score`` uses.

Bounds are checked with a margin (``threshold - 1e-9``), so float rounding can only let extra pairs reach
the exact LCS step, never skip one.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .tokens import rouge_tokens

try:  # numba is a dependency; the import is guarded only to give a clear message if it is broken
    from numba import njit
except ImportError as err:  # pragma: no cover
    raise ImportError("hf_synth.filters.rouge_fast needs numba: pip install numba") from err

_MARGIN = 1e-9


@njit(cache=True)
def _lcs(a, b):  # pragma: no cover - compiled
    if a.shape[0] < b.shape[0]:
        a, b = b, a
    m = b.shape[0]
    prev = np.zeros(m + 1, dtype=np.int32)
    cur = np.zeros(m + 1, dtype=np.int32)
    for x in a:
        cur[0] = 0
        for j in range(m):
            if x == b[j]:
                cur[j + 1] = prev[j] + 1
            else:
                cur[j + 1] = prev[j + 1] if prev[j + 1] > cur[j] else cur[j]
        prev, cur = cur, prev
    return prev[m]


@njit(cache=True)
def _overlap(a, b):  # pragma: no cover - compiled; a and b are sorted, with unique items
    i = j = n = 0
    while i < a.shape[0] and j < b.shape[0]:
        if a[i] == b[j]:
            n += 1
            i += 1
            j += 1
        elif a[i] < b[j]:
            i += 1
        else:
            j += 1
    return n


@njit(cache=True)
def _greedy(tokens, tok_off, items, item_off, prefix_len, post_ptr, post_docs, threshold, bound, n_fixed):
    # pragma: no cover - compiled; the first n_fixed texts are kept unconditionally (an existing pool)
    n = tok_off.shape[0] - 1
    kept = np.zeros(n, dtype=np.bool_)
    best = np.zeros(n, dtype=np.float64)
    nearest = np.full(n, -1, dtype=np.int64)
    mark = np.full(n, -1, dtype=np.int64)
    lcs_calls = 0
    for i in range(n):
        li = tok_off[i + 1] - tok_off[i]
        if li == 0 or i < n_fixed:
            kept[i] = True
            continue
        tok_i = tokens[tok_off[i] : tok_off[i + 1]]
        items_i = items[item_off[i] : item_off[i + 1]]
        drop = False
        for p in range(prefix_len[i]):
            item = items_i[p]
            for q in range(post_ptr[item], post_ptr[item + 1]):
                j = post_docs[q]
                if j >= i:
                    break
                if not kept[j] or mark[j] == i:
                    continue
                mark[j] = i
                lj = tok_off[j + 1] - tok_off[j]
                total = li + lj
                shorter = li if li < lj else lj
                if 2.0 * shorter < bound * total:
                    continue
                ov = _overlap(items_i, items[item_off[j] : item_off[j + 1]])
                if 2.0 * ov < bound * total:
                    continue
                lcs_calls += 1
                lcs = _lcs(tok_i, tokens[tok_off[j] : tok_off[j + 1]])
                if lcs == 0:
                    continue
                precision = lcs / li
                recall = lcs / lj
                f = 2 * precision * recall / (precision + recall)
                if f > best[i]:
                    best[i] = f
                    nearest[i] = j
                if f >= threshold:
                    drop = True
                    break
            if drop:
                break
        kept[i] = not drop
    return kept, best, nearest, lcs_calls


@dataclass
class NoveltyResult:
    """Per text: ``keep``; ``score`` (for dropped texts, the ROUGE-L F that dropped them; for kept ones, the
    highest F among the pairs that reached the LCS step, 0.0 if none did); ``nearest`` (index of that
    text, -1 if none); and ``lcs_computed``, how many LCS computations were needed."""

    keep: np.ndarray
    score: np.ndarray
    nearest: np.ndarray
    lcs_computed: int


def _encode(texts: Sequence[str], threshold: float):
    token_lists = [rouge_tokens(t) for t in texts]
    vocab: dict[str, int] = {}
    flat: list[int] = []
    offsets = [0]
    for toks in token_lists:
        flat.extend(vocab.setdefault(t, len(vocab)) for t in toks)
        offsets.append(len(flat))
    tokens = np.asarray(flat, dtype=np.int32)
    tok_off = np.asarray(offsets, dtype=np.int64)

    # Items (token, k-th occurrence) in rare-first order; a compact id per item keeps that order.
    doc_freq = np.bincount(tokens, minlength=len(vocab)) if len(vocab) else np.zeros(0, dtype=np.int64)
    rank = np.empty(len(vocab), dtype=np.int64)
    rank[np.lexsort((np.arange(len(vocab)), doc_freq))] = np.arange(len(vocab))
    max_occ = 1
    keys_per_doc = []
    for start, end in zip(offsets[:-1], offsets[1:], strict=True):
        seen: Counter = Counter()
        keys = []
        for t in flat[start:end]:
            keys.append((int(rank[t]), seen[t]))
            seen[t] += 1
        keys_per_doc.append(keys)
        if seen:
            max_occ = max(max_occ, max(seen.values()) + 1)
    all_keys = np.fromiter(
        (r * max_occ + k for keys in keys_per_doc for r, k in keys), dtype=np.int64, count=len(flat)
    )
    uniq, compact = np.unique(all_keys, return_inverse=True)
    items = np.empty(len(flat), dtype=np.int64)
    for d in range(len(texts)):
        a, b = offsets[d], offsets[d + 1]
        items[a:b] = np.sort(compact[a:b])

    lengths = np.diff(tok_off)
    ratio = threshold / (2.0 - threshold)
    prefix_len = np.array(
        [max(0, n - max(1, math.ceil(n * ratio - _MARGIN)) + 1) if n else 0 for n in lengths], dtype=np.int64
    )
    prefix_len = np.minimum(prefix_len, lengths)

    # CSR postings over prefix items, docs ascending within each item.
    docs = np.repeat(np.arange(len(texts), dtype=np.int64), prefix_len)
    prefix_items = (
        np.concatenate([items[tok_off[d] : tok_off[d] + prefix_len[d]] for d in range(len(texts))])
        if (len(texts) and prefix_len.sum())
        else np.zeros(0, dtype=np.int64)
    )
    order = np.lexsort((docs, prefix_items))
    post_docs = docs[order]
    counts = np.bincount(prefix_items, minlength=len(uniq))
    post_ptr = np.zeros(len(uniq) + 1, dtype=np.int64)
    np.cumsum(counts, out=post_ptr[1:])
    return tokens, tok_off, items, tok_off.copy(), prefix_len, post_ptr, post_docs


def greedy_novelty_fast(
    texts: Sequence[str], threshold: float = 0.7, *, pool: Sequence[str] = ()
) -> NoveltyResult:
    """Self-Instruct's greedy ROUGE-L novelty filter over ``texts`` in order, exactly, in compiled code.

    ``pool`` texts (e.g. the seeds) count as already kept: every text is compared with them too. The
    result covers ``texts`` only; ``nearest`` indexes ``pool`` followed by ``texts``.
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if len(texts) == 0:
        empty = np.zeros(0)
        return NoveltyResult(empty.astype(bool), empty, empty.astype(np.int64), 0)
    everything = [*pool, *texts]
    encoded = _encode(everything, threshold)
    keep, best, nearest, calls = _greedy(*encoded, threshold, threshold - _MARGIN, len(pool))
    n = len(pool)
    return NoveltyResult(keep=keep[n:], score=best[n:], nearest=nearest[n:], lcs_computed=int(calls))


# ---------------------------------------------------------------------------- growing best-match index
# The kernels behind :class:`hf_synth.filters.rouge.RougeLIndex`: texts are stored once as int32 token ids
# (one flat array + offsets) with per-token postings of (text, count) that grow in place (a token's list
# moves to a region twice as large when full, so appends are amortised O(1) and no work is redone as the
# pool grows). A query accumulates the multiset overlap of every pool text sharing a token, then runs the
# exact LCS only where the overlap bound could still beat the best score so far, in the same order, with
# the same float operations and the same tie rule as the pure-Python loop it replaces.


@njit(cache=True)
def _index_add(uniq, counts, doc, p_start, p_len, p_cap, p_doc, p_cnt, p_used):  # pragma: no cover
    """Append ``doc`` to the postings of its distinct tokens; returns the new ``p_used``, or ``-needed``
    (nothing changed) when ``p_doc`` lacks ``needed`` more free entries."""
    needed = 0
    for k in range(uniq.shape[0]):
        t = uniq[k]
        if p_len[t] == p_cap[t]:
            needed += max(4, 2 * p_cap[t])
    if p_used + needed > p_doc.shape[0]:
        return -(p_used + needed)
    for k in range(uniq.shape[0]):
        t = uniq[k]
        if p_len[t] == p_cap[t]:
            cap = max(4, 2 * p_cap[t])
            start = p_used
            for e in range(p_len[t]):
                p_doc[start + e] = p_doc[p_start[t] + e]
                p_cnt[start + e] = p_cnt[p_start[t] + e]
            p_start[t] = start
            p_cap[t] = cap
            p_used += cap
        e = p_start[t] + p_len[t]
        p_doc[e] = doc
        p_cnt[e] = counts[k]
        p_len[t] += 1
    return p_used


@njit(cache=True)
def _popcount(x):  # pragma: no cover - compiled; x is uint64
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return int((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(cache=True)
def _lcs_bits(masks, b, la):  # pragma: no cover - compiled
    """LCS length of a text ``a`` of ``la`` <= 64 tokens and ``b``, bit-parallel (Allison-Dix / Hyyrö):
    ``masks[t]`` has bit i set where ``a[i] == t`` (0 for tokens not in ``a``; ``b`` may hold -1)."""
    v = ~np.uint64(0)
    for k in range(b.shape[0]):
        t = b[k]
        if t < 0:
            continue
        u = v & masks[t]
        v = (v + u) | (v - u)
    if la < 64:
        v = v & ((np.uint64(1) << np.uint64(la)) - np.uint64(1))
    return la - _popcount(v)


@njit(cache=True)
def _set_masks(masks, a):  # pragma: no cover - compiled; a: token ids (-1: unknown), len(a) <= 64
    for i in range(a.shape[0]):
        if a[i] >= 0:
            masks[a[i]] |= np.uint64(1) << np.uint64(i)


@njit(cache=True)
def _clear_masks(masks, a):  # pragma: no cover - compiled
    for i in range(a.shape[0]):
        if a[i] >= 0:
            masks[a[i]] = np.uint64(0)


@njit(cache=True)
def lcs_ids(a, b, masks):  # pragma: no cover - compiled
    """LCS length of two int32 token-id arrays (ids < len(masks), a zeroed uint64 scratch array)."""
    if a.shape[0] < b.shape[0]:
        a, b = b, a
    if b.shape[0] == 0:
        return 0
    if b.shape[0] <= 64:
        _set_masks(masks, b)
        n = _lcs_bits(masks, a, b.shape[0])
        _clear_masks(masks, b)
        return n
    return _lcs(a, b)


@njit(cache=True)
def _f_measure(lcs, la, lb):  # pragma: no cover - compiled; rouge_score's operations, in its order
    if lcs == 0:
        return 0.0
    precision = lcs / lb
    recall = lcs / la
    return 2 * precision * recall / (precision + recall)


_BATCH = 32


@njit(cache=True)
def _index_best(
    query, uniq, counts, tok, off, n_docs, p_start, p_len, p_doc, p_cnt, acc, touched, bounds, masks, stop_at
):  # pragma: no cover - compiled
    """Best (score, index) of ``query`` (token ids, -1 for tokens the pool never saw) in the pool.

    Equal to visiting every pool text sharing a token in decreasing (bound, index) order, with
    bound = 2·overlap/(la + lb), stopping at the first bound <= best, replacing best only on a strictly
    higher score (and stopping at a score >= ``stop_at`` when ``stop_at`` >= 0)."""
    la = query.shape[0]
    bits = la <= 64
    if bits:
        _set_masks(masks, query)
    # Overlaps by scatter-add over the postings (no branch per entry), then one sequential pass over
    # the pool that reads and clears them: cheaper than tracking which texts were touched.
    for k in range(uniq.shape[0]):
        t = uniq[k]
        n = counts[k]
        s = p_start[t]
        for e in range(s, s + p_len[t]):
            c = p_cnt[e]
            acc[p_doc[e]] += n if n < c else c
    nt = 0
    top = 0
    for d in range(n_docs):
        o = acc[d]
        if o:
            acc[d] = 0
            touched[nt] = d
            bounds[nt] = 2 * o / (la + (off[d + 1] - off[d]))
            if bounds[nt] > bounds[top] or (bounds[nt] == bounds[top] and d > touched[top]):
                top = nt
            nt += 1
    best = 0.0
    best_index = -1
    if nt == 0:
        if bits:
            _clear_masks(masks, query)
        return best, best_index
    # The first text in that order is always scored; after it, only texts whose bound beats its score
    # can be reached before the loop stops.
    d = touched[top]
    doc = tok[off[d] : off[d + 1]]
    score = _f_measure(_lcs_bits(masks, doc, la) if bits else _lcs(query, doc), la, doc.shape[0])
    done = False
    if score > best:
        best = score
        best_index = d
        if stop_at >= 0 and score >= stop_at:
            done = True
    if not done:
        # The rest in decreasing (bound, index) order without sorting them all: a pass over the texts
        # whose bound beats the best score keeps the next _BATCH of that order, which are then scored in
        # order; the loop rarely needs a second pass.
        cut_b = np.inf
        cut_d = np.int64(-1)
        buf_b = np.empty(_BATCH, dtype=np.float64)
        buf_d = np.empty(_BATCH, dtype=np.int64)
        while not done:
            nb = 0
            for k in range(nt):
                b = bounds[k]
                dk = np.int64(touched[k])
                if k == top or b <= best or b > cut_b or (b == cut_b and dk >= cut_d):
                    continue  # scored already, out of reach, or taken by an earlier pass
                if nb < _BATCH:
                    pos = nb
                    nb += 1
                elif b > buf_b[_BATCH - 1] or (b == buf_b[_BATCH - 1] and dk > buf_d[_BATCH - 1]):
                    pos = _BATCH - 1
                else:
                    continue
                while pos > 0 and (buf_b[pos - 1] < b or (buf_b[pos - 1] == b and buf_d[pos - 1] < dk)):
                    buf_b[pos] = buf_b[pos - 1]
                    buf_d[pos] = buf_d[pos - 1]
                    pos -= 1
                buf_b[pos] = b
                buf_d[pos] = dk
            for i in range(nb):
                if buf_b[i] <= best:
                    done = True
                    break
                d = buf_d[i]
                doc = tok[off[d] : off[d + 1]]
                score = _f_measure(_lcs_bits(masks, doc, la) if bits else _lcs(query, doc), la, doc.shape[0])
                if score > best:
                    best = score
                    best_index = d
                    if stop_at >= 0 and score >= stop_at:
                        done = True
                        break
            if nb < _BATCH:
                done = True
            else:
                cut_b = buf_b[_BATCH - 1]
                cut_d = buf_d[_BATCH - 1]
    if bits:
        _clear_masks(masks, query)
    return best, best_index
