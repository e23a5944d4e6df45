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

from rouge_score.tokenizers import DefaultTokenizer

_TOKENIZER = DefaultTokenizer(use_stemmer=False)


def rouge_tokens(text: str) -> list[str]:
    """rouge_score's default tokens: lower-cased ASCII letters and digits, no stemming."""
    return _TOKENIZER.tokenize(text or "")


def lcs_length(a: Sequence, b: Sequence) -> int:
    """Length of the longest common subsequence (O(len(a)·len(b)) time, O(len(b)) memory)."""
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
    """A growing pool of texts that answers "what is the best ROUGE-L match of this text?" exactly."""

    def __init__(self, texts: Iterable[str] = ()) -> None:
        self._tokens: list[list[str]] = []
        self._counts: list[Counter] = []
        self._postings: dict[str, list[int]] = {}
        for text in texts:
            self.add(text)

    def __len__(self) -> int:
        return len(self._tokens)

    def add(self, text: str) -> int:
        tokens = rouge_tokens(text)
        index = len(self._tokens)
        self._tokens.append(tokens)
        counts = Counter(tokens)
        self._counts.append(counts)
        for token in counts:
            self._postings.setdefault(token, []).append(index)
        return index

    def best_match(self, text: str, *, stop_at: float | None = None) -> Match:
        """Exact maximum ROUGE-L F of ``text`` against the pool.

        With ``stop_at``, the search ends as soon as a score ``>= stop_at`` is found (enough to reject).
        """
        tokens = rouge_tokens(text)
        best = Match(0.0, -1)
        if not tokens or not self._tokens:
            return best
        counts = Counter(tokens)
        overlap: dict[int, int] = {}
        for token, n in counts.items():
            for index in self._postings.get(token, ()):
                overlap[index] = overlap.get(index, 0) + min(n, self._counts[index][token])
        bounds = sorted(
            ((2 * o / (len(tokens) + len(self._tokens[i])), i) for i, o in overlap.items()), reverse=True
        )
        for bound, index in bounds:
            if bound <= best.score:
                break
            score = rouge_l_f(tokens, self._tokens[index])
            if score > best.score:
                best = Match(score, index)
                if stop_at is not None and score >= stop_at:
                    break
        return best


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
