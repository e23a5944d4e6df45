"""Curation filters over any ``Dataset``: each adds score columns, then ``split_filtered`` drops rows.

Every filter writes its numbers into the ``scores`` struct column (``scores.<name>``) and appends its
reasons to ``filter_reasons``; nothing is dropped until :func:`split_filtered`, so scores can be inspected
(and thresholds tuned) first, and several filters chain on one dataset.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from datasets import Dataset

from ..rows import column_texts, fresh_fingerprint, map_in_one_batch
from .complexity import complexity_features
from .heuristics import word_count
from .rouge_fast import greedy_novelty_fast


def add_filter_columns(
    dataset: Dataset, scores: Sequence[dict[str, Any]], reasons: Sequence[list[str]]
) -> Dataset:
    """Merge per-row ``scores`` into the ``scores`` column and append ``reasons`` to ``filter_reasons``."""
    if len(scores) != len(dataset) or len(reasons) != len(dataset):
        raise ValueError(f"need one score dict and one reason list per row ({len(dataset)} rows)")
    has_scores = "scores" in dataset.column_names
    has_reasons = "filter_reasons" in dataset.column_names

    def _merge(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        old_scores = batch["scores"] if has_scores else [None] * len(indices)
        old_reasons = batch["filter_reasons"] if has_reasons else [[] for _ in indices]
        return {
            "scores": [{**(old or {}), **scores[i]} for old, i in zip(old_scores, indices, strict=True)],
            "filter_reasons": [
                list(old) + list(reasons[i]) for old, i in zip(old_reasons, indices, strict=True)
            ],
        }

    # One batch for the whole column: a first batch whose rows all lack reasons must not type the column.
    return map_in_one_batch(dataset, _merge, new_fingerprint=fresh_fingerprint())


def reason_key(reason: str) -> str:
    """What a reason is counted as in summaries and cards: its text before the first space (reasons that
    carry details, such as ``contaminated:<set> instruction shares 13-gram ...``, count per kind)."""
    return reason.split(" ", 1)[0]


def split_filtered(dataset: Dataset) -> tuple[Dataset, Dataset]:
    """``Dataset.filter`` on ``filter_reasons``: (rows with no reason, rows with at least one)."""
    if "filter_reasons" not in dataset.column_names:
        raise ValueError("No 'filter_reasons' column: run at least one filter before splitting.")
    kept = dataset.filter(lambda reasons: not reasons, input_columns="filter_reasons", keep_in_memory=True)
    dropped = dataset.filter(
        lambda reasons: bool(reasons), input_columns="filter_reasons", keep_in_memory=True
    )
    return kept, dropped


def rouge_novelty_filter(
    dataset: Dataset, column: str = "instruction", threshold: float = 0.7, *, pool: Sequence[str] = ()
) -> Dataset:
    """Self-Instruct's greedy ROUGE-L novelty filter, exact and compiled (41k prompts in seconds).

    Rows are visited in order; a row is dropped (``rouge_l_too_similar``) if its ROUGE-L F against ``pool``
    or any earlier kept row is >= ``threshold``. Adds ``scores.rouge_l_novelty`` (the F that dropped a row;
    for a kept row the highest F among pairs that needed an exact check, else 0) and
    ``scores.rouge_l_nearest_row`` (row index of that text in ``pool`` + dataset order, -1 if none).
    """
    result = greedy_novelty_fast(column_texts(dataset, column), threshold, pool=pool)
    scores = [
        {"rouge_l_novelty": float(s), "rouge_l_nearest_row": int(n)}
        for s, n in zip(result.score, result.nearest, strict=True)
    ]
    reasons = [[] if keep else ["rouge_l_too_similar"] for keep in result.keep]
    return add_filter_columns(dataset, scores, reasons)


def length_filter(
    dataset: Dataset,
    column: str,
    *,
    min_words: int = 0,
    max_words: int | None = None,
    min_tokens: int = 0,
    max_tokens: int | None = None,
    tokenizer: Any = None,
) -> Dataset:
    """Word (and, with a ``tokenizer``, token) length bounds on ``column``. Adds ``scores.<column>_words``
    (and ``<column>_tokens``); reasons ``<column>_too_short`` / ``<column>_too_long``."""
    texts = column_texts(dataset, column)
    words = [word_count(t) for t in texts]
    tokens = (
        [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]] if tokenizer else None
    )
    scores, reasons = [], []
    for i, n in enumerate(words):
        row_scores: dict[str, Any] = {f"{column}_words": n}
        row_reasons = []
        if n < min_words:
            row_reasons.append(f"{column}_too_short")
        elif max_words is not None and n > max_words:
            row_reasons.append(f"{column}_too_long")
        if tokens is not None:
            row_scores[f"{column}_tokens"] = tokens[i]
            if tokens[i] < min_tokens and f"{column}_too_short" not in row_reasons:
                row_reasons.append(f"{column}_too_short")
            elif (
                max_tokens is not None and tokens[i] > max_tokens and f"{column}_too_long" not in row_reasons
            ):
                row_reasons.append(f"{column}_too_long")
        scores.append(row_scores)
        reasons.append(row_reasons)
    return add_filter_columns(dataset, scores, reasons)


_VOWEL_GROUPS = re.compile(r"[aeiouy]+")


def _syllables(word: str) -> int:
    word = word.lower()
    count = len(_VOWEL_GROUPS.findall(word))
    if word.endswith("e") and not word.endswith(("le", "ee")) and count > 1:
        count -= 1
    return max(1, count)


def reading_grade(text: str) -> float:
    """Flesch-Kincaid grade level (a rough US school grade; English only, heuristic syllable count)."""
    words = re.findall(r"[A-Za-z]+", text or "")
    if not words:
        return 0.0
    sentences = max(1, len(re.findall(r"[.!?]+(?:\s|$)", text)))
    syllables = sum(_syllables(w) for w in words)
    return round(0.39 * len(words) / sentences + 11.8 * syllables / len(words) - 15.59, 2)


def complexity_filter(
    dataset: Dataset,
    column: str = "instruction",
    *,
    min_clauses: int = 0,
    min_constraints: int = 0,
    max_grade: float | None = None,
) -> Dataset:
    """Complexity features of ``column`` as scores (``<column>_clauses``, ``_sentences``, ``_constraints``,
    ``_grade`` = Flesch-Kincaid), with optional lower bounds (``<column>_too_simple``) and an upper bound
    on the reading grade (``<column>_too_hard_to_read``)."""
    scores, reasons = [], []
    for text in column_texts(dataset, column):
        feats = complexity_features(text)
        grade = reading_grade(text)
        scores.append(
            {
                f"{column}_clauses": feats["clauses"],
                f"{column}_sentences": feats["sentences"],
                f"{column}_constraints": feats["constraints"],
                f"{column}_grade": grade,
            }
        )
        row = []
        if feats["clauses"] < min_clauses or feats["constraints"] < min_constraints:
            row.append(f"{column}_too_simple")
        if max_grade is not None and grade > max_grade:
            row.append(f"{column}_too_hard_to_read")
        reasons.append(row)
    return add_filter_columns(dataset, scores, reasons)


def _shingles(text: str, n: int) -> set[str]:
    words = re.findall(r"\w+", (text or "").lower())
    if len(words) < n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def minhash_dedup_filter(
    dataset: Dataset,
    column: str = "instruction",
    *,
    threshold: float = 0.8,
    num_perm: int = 128,
    ngram: int = 3,
    seed: int = 1,
) -> Dataset:
    """Near-duplicate removal with MinHash LSH (datasketch) over word ``ngram`` shingles.

    Rows are visited in order; a row whose estimated Jaccard similarity to an earlier kept row is at least
    ``threshold`` is dropped (``near_duplicate``). Adds ``scores.minhash_duplicate_of`` (row index of that
    earlier row, -1 for kept rows). Rows with no words are left alone.
    """
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    scores, reasons = [], []
    for i, text in enumerate(column_texts(dataset, column)):
        shingles = _shingles(text, ngram)
        if not shingles:
            scores.append({"minhash_duplicate_of": -1})
            reasons.append([])
            continue
        signature = MinHash(num_perm=num_perm, seed=seed)
        signature.update_batch([s.encode("utf-8") for s in shingles])
        matches = lsh.query(signature)
        if matches:
            scores.append({"minhash_duplicate_of": min(int(m) for m in matches)})
            reasons.append(["near_duplicate"])
        else:
            lsh.insert(str(i), signature)
            scores.append({"minhash_duplicate_of": -1})
            reasons.append([])
    return add_filter_columns(dataset, scores, reasons)
