"""The compiled, growing RougeLIndex answers exactly what the pure-Python index it replaced answered.

``PythonRougeLIndex`` below is that implementation, kept verbatim as the reference: the same scores, the same
nearest index (ties included), the same early stop with ``stop_at``.
"""

import random
from collections import Counter

import pytest
from datasets import Dataset
from hypothesis import given, settings
from hypothesis import strategies as st
from rouge_score import rouge_scorer

from hf_synth import SelfInstructConfig
from hf_synth.filters import RougeLIndex, rouge_tokens
from hf_synth.filters.rouge import Match, lcs_length
from hf_synth.self_instruct.steps import score_instructions

from .conftest import many_instructions

SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


class PythonRougeLIndex:
    """The index as it was before the compiled one (hf_synth/filters/rouge.py at cd01af7)."""

    def __init__(self, texts=()):
        self._tokens, self._counts, self._postings = [], [], {}
        for text in texts:
            self.add(text)

    def add(self, text):
        tokens = rouge_tokens(text)
        index = len(self._tokens)
        self._tokens.append(tokens)
        counts = Counter(tokens)
        self._counts.append(counts)
        for token in counts:
            self._postings.setdefault(token, []).append(index)
        return index

    def best_match(self, text, *, stop_at=None):
        tokens = rouge_tokens(text)
        best = Match(0.0, -1)
        if not tokens or not self._tokens:
            return best
        counts = Counter(tokens)
        overlap = {}
        for token, n in counts.items():
            for index in self._postings.get(token, ()):
                overlap[index] = overlap.get(index, 0) + min(n, self._counts[index][token])
        bounds = sorted(
            ((2 * o / (len(tokens) + len(self._tokens[i])), i) for i, o in overlap.items()), reverse=True
        )
        for bound, index in bounds:
            if bound <= best.score:
                break
            score = _rouge_l_reference(tokens, self._tokens[index])
            if score > best.score:
                best = Match(score, index)
                if stop_at is not None and score >= stop_at:
                    break
        return best


def _rouge_l_reference(a, b):
    """rouge_l_f as it was: the Python dynamic programme, then rouge_score's F operations."""
    lcs = _lcs_reference(a, b) if a and b else 0
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(b), lcs / len(a)
    return 2 * precision * recall / (precision + recall)


WORDS = ["the", "a", "cat", "dog", "sat", "on", "mat", "red", "big", "ran", "to", "of", "3", "x"]
texts = st.lists(st.sampled_from(WORDS), min_size=0, max_size=14).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(pool=st.lists(texts, max_size=40), queries=st.lists(texts, min_size=1, max_size=15), data=st.data())
def test_growing_index_equals_the_python_index(pool, queries, data):
    fast, slow = RougeLIndex(), PythonRougeLIndex()
    for text in pool:
        assert fast.add(text) == slow.add(text)
        if data.draw(st.booleans()):  # queries between adds: the index grows while it is used
            query = data.draw(texts)
            assert fast.best_match(query) == slow.best_match(query)
    for query in queries:
        assert fast.best_match(query) == slow.best_match(query)
        stop = data.draw(st.sampled_from([0.0, 0.3, 0.5, 0.7, 1.0]))
        assert fast.best_match(query, stop_at=stop) == slow.best_match(query, stop_at=stop)
    assert len(fast) == len(pool)


def test_ties_pick_the_same_index():
    # Many identical and equally-scoring texts: the highest (bound, index) wins, as before.
    pool = ["the cat sat", "cat the sat", "the cat sat", "sat cat the", "the cat sat on"] * 3
    fast, slow = RougeLIndex(pool), PythonRougeLIndex(pool)
    for query in ["the cat sat", "cat sat", "sat the", "the", "on the mat", "dog"]:
        assert fast.best_match(query) == slow.best_match(query)


@pytest.fixture(scope="module")
def real():
    return many_instructions(370)


def test_equals_rouge_score_and_the_python_index_on_real_texts(real):
    rng = random.Random(7)
    pool, queries = real[:280], real[280:]
    queries += [p.replace("the", "a", 1) for p in rng.sample(pool, 30)] + rng.sample(pool, 5)
    fast, slow = RougeLIndex(pool), PythonRougeLIndex(pool)
    for query in queries:
        match = fast.best_match(query)
        assert match == slow.best_match(query)
        # rouge_score computes F from (lcs, la, lb) of whichever text wins; texts with equal F may differ
        # from it in the last bit, and today's index keeps the first it meets: equal to 1e-12, as before.
        assert match.score == pytest.approx(
            max(SCORER.score(query, p)["rougeL"].fmeasure for p in pool), abs=1e-12
        )
        assert match.score == SCORER.score(query, pool[match.index])["rougeL"].fmeasure


def test_score_instructions_decisions_equal_the_reference(real):
    """The pipeline's novelty step (pool + candidates kept before, global wins ties) with the compiled
    index gives the decisions, rouge_l_max and rouge_l_nearest of the Python index."""
    rng = random.Random(3)
    pool_texts = real[:150]
    pool_ids = [f"p{i}" for i in range(len(pool_texts))]
    candidates = real[150:330] + [p.replace("the", "a", 1) for p in rng.sample(pool_texts, 40)]
    candidates += candidates[:10]
    rng.shuffle(candidates)
    ids = [f"c{i}" for i in range(len(candidates))]
    config = SelfInstructConfig(min_instruction_words=0)
    scored = score_instructions(
        Dataset.from_dict({"id": ids, "instruction": candidates}), RougeLIndex(pool_texts), pool_ids, config
    )
    # The reference, spelled out with the Python index and rouge_score.
    pool, local, local_ids = PythonRougeLIndex(pool_texts), PythonRougeLIndex(), []
    for row, row_id, text in zip(scored, ids, candidates, strict=True):
        g, lm = pool.best_match(text), local.best_match(text)
        if g.score >= lm.score and g.index >= 0:
            best, nearest = g.score, pool_ids[g.index]
        elif lm.index >= 0:
            best, nearest = lm.score, local_ids[lm.index]
        else:
            best, nearest = 0.0, ""
        if row["filter_reasons"] != ["rouge_l_too_similar"] and row["filter_reasons"]:
            continue  # dropped by a rule before ROUGE
        keep = best < config.rouge_l_threshold
        assert (not row["filter_reasons"]) == keep
        assert row["scores"]["rouge_l_max"] == best and row["scores"]["rouge_l_nearest"] == nearest
        if keep:
            local.add(text)
            local_ids.append(row_id)
            everything = pool_texts + [candidates[ids.index(i)] for i in local_ids[:-1]]
            assert all(SCORER.score(text, t)["rougeL"].fmeasure < 0.7 for t in everything)
    assert sum(r["filter_reasons"] == ["rouge_l_too_similar"] for r in scored) >= 20


def _lcs_reference(a, b):
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1]


@settings(max_examples=300, deadline=None)
@given(
    a=st.lists(st.sampled_from("abcdefg"), max_size=90), b=st.lists(st.sampled_from("abcdefg"), max_size=90)
)
def test_lcs_length_equals_the_dynamic_programme(a, b):
    # Both sides of 64 tokens (one machine word) and the fallback beyond it.
    assert lcs_length(a, b) == _lcs_reference(a, b) == lcs_length(b, a)


def test_many_candidates_beyond_one_batch():
    # A large pool over a tiny vocabulary: hundreds of texts share tokens and bounds tie, so the
    # selection takes several batches of the (bound, index) order.
    rng = random.Random(11)
    pool = [" ".join(rng.choices("abcdef", k=rng.randint(1, 12))) for _ in range(800)]
    fast, slow = RougeLIndex(pool), PythonRougeLIndex(pool)
    for _ in range(150):
        query = " ".join(rng.choices("abcdefgh", k=rng.randint(1, 15)))
        assert fast.best_match(query) == slow.best_match(query)
