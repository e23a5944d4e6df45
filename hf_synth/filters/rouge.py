"""ROUGE-L with rouge_score's exact tokenisation, and a greedy novelty filter against a pool.

Scores equal ``rouge_score.rouge_scorer.RougeScorer(["rougeL"]).score(a, b)["rougeL"].fmeasure``.
Pairs are pruned exactly: ROUGE-L F can never exceed the unigram-overlap F (an LCS is a common
subsequence, so its length is at most the multiset overlap), so a pool entry whose overlap bound is
below the best score so far (or below the threshold) needs no LCS at all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .tokens import rouge_tokens


def lcs_length(a: Sequence, b: Sequence) -> int:
    """Length of the longest common subsequence of two token sequences (compiled: bit-parallel when
    the shorter one has at most 64 tokens, dynamic programming otherwise)."""
    if not a or not b:
        return 0
    if len(a) * len(b) <= 16:
        return _lcs_python(a, b)
    from .rouge_fast import lcs_ids

    ids: dict = {}
    a_ids = np.fromiter((ids.setdefault(t, len(ids)) for t in a), dtype=np.int32, count=len(a))
    b_ids = np.fromiter((ids.setdefault(t, len(ids)) for t in b), dtype=np.int32, count=len(b))
    return int(lcs_ids(a_ids, b_ids, np.zeros(len(ids), dtype=np.uint64)))


def _lcs_python(a: Sequence, b: Sequence) -> int:
    """O(len(a)·len(b)) time, O(len(b)) memory."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return 0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        append = current.append
        for j, y in enumerate(b):
            append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l_f(a: Sequence, b: Sequence) -> float:
    """ROUGE-L F-measure between two token lists (symmetric)."""
    if not a or not b:
        return 0.0
    lcs = lcs_length(a, b)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(b), lcs / len(a)
    return 2 * precision * recall / (precision + recall)


@dataclass
class Match:
    """Best ROUGE-L match of a text in a pool: its score and the pool index (-1 when the pool is empty)."""

    score: float
    index: int


class RougeLIndex:
    """A growing pool of texts that answers "what is the best ROUGE-L match of this text?" exactly.

    Each text is tokenised once and stored as int32 token ids with per-token postings that grow in place;
    a query sums the multiset overlap with every pool text sharing a token and runs the (compiled) LCS
    only where the overlap bound can still beat the best score so far. The answer, ties included, is
    that of scoring every pool text with :func:`rouge_l_f` in decreasing (bound, index) order and keeping
    the first best.
    """

    def __init__(self, texts: Iterable[str] = ()) -> None:
        from . import rouge_fast

        self._kernels = rouge_fast
        self._vocab: dict[str, int] = {}
        self._tok = np.zeros(1024, dtype=np.int32)
        self._off = np.zeros(257, dtype=np.int64)
        self._docs = 0
        self._p_start = np.zeros(256, dtype=np.int64)
        self._p_len = np.zeros(256, dtype=np.int64)
        self._p_cap = np.zeros(256, dtype=np.int64)
        self._p_doc = np.zeros(4096, dtype=np.int32)
        self._p_cnt = np.zeros(4096, dtype=np.int32)
        self._p_used = 0
        self._acc = np.zeros(256, dtype=np.int32)
        self._touched = np.zeros(256, dtype=np.int32)
        self._bounds = np.zeros(256, dtype=np.float64)
        self._masks = np.zeros(256, dtype=np.uint64)  # bit-parallel LCS scratch, one word per token
        for text in texts:
            self.add(text)

    def __len__(self) -> int:
        return self._docs

    @staticmethod
    def _grown(array: np.ndarray, size: int) -> np.ndarray:
        if size <= array.shape[0]:
            return array
        bigger = np.zeros(max(size, 2 * array.shape[0]), dtype=array.dtype)
        bigger[: array.shape[0]] = array
        return bigger

    def add(self, text: str) -> int:
        """Add ``text`` to the pool; returns its index."""
        return self.add_tokens(rouge_tokens(text))

    def add_tokens(self, tokens: Sequence[str]) -> int:
        """Add a text already tokenised with :func:`rouge_tokens`; returns its index."""
        vocab = self._vocab
        ids = [vocab.setdefault(t, len(vocab)) for t in tokens]
        index, end = self._docs, int(self._off[self._docs]) + len(ids)
        self._tok = self._grown(self._tok, end)
        self._tok[int(self._off[index]) : end] = ids
        self._off = self._grown(self._off, index + 2)
        self._off[index + 1] = end
        for name in ("_acc", "_touched", "_bounds"):
            setattr(self, name, self._grown(getattr(self, name), index + 1))
        for name in ("_p_start", "_p_len", "_p_cap", "_masks"):
            setattr(self, name, self._grown(getattr(self, name), len(vocab)))
        self._docs += 1
        if not ids:
            return index
        counts = Counter(ids)
        uniq = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        cnt = np.fromiter(counts.values(), dtype=np.int32, count=len(counts))
        while True:
            used = self._kernels._index_add(
                uniq, cnt, index, self._p_start, self._p_len, self._p_cap, self._p_doc, self._p_cnt,
                self._p_used,
            )  # fmt: skip
            if used >= 0:
                self._p_used = used
                return index
            self._p_doc = self._grown(self._p_doc, -used)
            self._p_cnt = self._grown(self._p_cnt, -used)

    def best_match(self, text: str, *, stop_at: float | None = None) -> Match:
        """Exact maximum ROUGE-L F of ``text`` against the pool.

        With ``stop_at``, the search ends as soon as a score ``>= stop_at`` is found (enough to reject).
        """
        return self.best_match_tokens(rouge_tokens(text), stop_at=stop_at)

    def best_match_tokens(self, tokens: Sequence[str], *, stop_at: float | None = None) -> Match:
        """:meth:`best_match` of a text already tokenised with :func:`rouge_tokens`."""
        if not tokens or not self._docs:
            return Match(0.0, -1)
        vocab = self._vocab
        ids = [vocab.get(t, -1) for t in tokens]
        counts = Counter(i for i in ids if i >= 0)
        if not counts:
            return Match(0.0, -1)
        score, index = self._kernels._index_best(
            np.asarray(ids, dtype=np.int32),
            np.fromiter(counts.keys(), dtype=np.int64, count=len(counts)),
            np.fromiter(counts.values(), dtype=np.int32, count=len(counts)),
            self._tok, self._off, self._docs, self._p_start, self._p_len, self._p_doc, self._p_cnt,
            self._acc, self._touched, self._bounds, self._masks, -1.0 if stop_at is None else float(stop_at),
        )  # fmt: skip
        return Match(float(score), int(index))


@dataclass
class NoveltyDecision:
    keep: bool
    rouge_l_max: float
    nearest: int


def greedy_novelty(
    candidates: Sequence[str], pool: Iterable[str] | RougeLIndex, threshold: float = 0.7
) -> list[NoveltyDecision]:
    """Self-Instruct's order-dependent novelty filter.

    A candidate is kept if its ROUGE-L F against every pool text *and every candidate kept before it*
    is below ``threshold``; kept candidates are added to the pool. ``nearest`` indexes the pool followed
    by the kept candidates in order. A passed :class:`RougeLIndex` is extended in place.
    """
    index = pool if isinstance(pool, RougeLIndex) else RougeLIndex(pool)
    decisions = []
    for text in candidates:
        match = index.best_match(text)
        keep = match.score < threshold
        decisions.append(NoveltyDecision(keep=keep, rouge_l_max=match.score, nearest=match.index))
        if keep:
            index.add(text)
    return decisions
