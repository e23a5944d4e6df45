"""Diversity in numbers: the figures that let two runs, two methods or a run and its seeds be compared.

- ``distinct_1`` / ``distinct_2``: distinct word uni-/bigrams over all n-grams of the instructions
  (lower-case word tokens, punctuation stripped).
- ``mean_pairwise_distance``: mean cosine distance (1 - cosine) over all pairs of instruction embeddings.
- ``vendi_score``: exp of the Shannon entropy of the eigenvalues of K/n, K the cosine-similarity matrix
  (Friedman & Dieng, 2023): 1 for n identical rows, n for n mutually orthogonal ones; "the effective number
  of distinct instructions".
- ``skill_entropy_bits``: Shannon entropy (bits) of the skill distribution, when a ``skill`` column exists.
- ``rouge_l_ge_0.7`` / ``rouge_l_ge_0.5``: share of instructions whose ROUGE-L F to the nearest seed is at
  least 0.7 / 0.5 (``rouge_l_reference`` says against what: the seeds, or the generation pool of a
  Self-Instruct run's own ``scores.rouge_l_max``).
- ``root_verbs``: distinct root verbs of the instructions (the report's approximation for imperatives).

Both embedding figures are exact for any n, with no subsampling: for L2-normalised rows X (n x d), the
non-zero eigenvalues of K/n = X Xᵀ/n are the squared singular values of X over n, and the sum of all
pairwise cosines is ||Σx||² - n.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..filters.decontaminate import normalised_tokens
from ..rows import as_texts

logger = logging.getLogger(__name__)

#: The figures, in the order tables show them.
DIVERSITY_FIELDS = (
    "rows",
    "distinct_1",
    "distinct_2",
    "mean_pairwise_distance",
    "vendi_score",
    "skill_entropy_bits",
    "rouge_l_ge_0.7",
    "rouge_l_ge_0.5",
    "root_verbs",
)


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct n-grams / all n-grams over ``texts`` (0.0 when there is none)."""
    total, seen = 0, set()
    for text in texts:
        tokens = normalised_tokens(text)
        grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else 0.0


def _normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def vendi_score(vectors: np.ndarray) -> float:
    """Vendi score with the cosine-similarity kernel: exp(-Σ λ log λ), λ the eigenvalues of K/n."""
    x = _normalised(vectors)
    n = x.shape[0]
    if n == 0:
        return 0.0
    eigenvalues = np.linalg.svd(x, compute_uv=False) ** 2 / n
    eigenvalues = eigenvalues[eigenvalues > 1e-12]
    return float(np.exp(-np.sum(eigenvalues * np.log(eigenvalues))))


def mean_pairwise_distance(vectors: np.ndarray) -> float:
    """Mean of 1 - cosine over all pairs i < j (0.0 for fewer than two rows)."""
    x = _normalised(vectors)
    n = x.shape[0]
    if n < 2:
        return 0.0
    total = x.sum(axis=0)
    pair_cosines = (float(total @ total) - float((x * x).sum())) / (n * (n - 1))
    return 1.0 - pair_cosines


def entropy_bits(labels: Sequence[Any]) -> float:
    """Shannon entropy in bits of the label distribution."""
    counts = Counter(labels)
    total = sum(counts.values())
    return float(-sum(c / total * math.log2(c / total) for c in counts.values())) if total else 0.0


def rouge_shares(scores: Sequence[float]) -> dict[str, float]:
    """Share of scores >= 0.7 and >= 0.5."""
    scores = list(scores)
    if not scores:
        return {"rouge_l_ge_0.7": 0.0, "rouge_l_ge_0.5": 0.0}
    return {
        "rouge_l_ge_0.7": sum(s >= 0.7 for s in scores) / len(scores),
        "rouge_l_ge_0.5": sum(s >= 0.5 for s in scores) / len(scores),
    }


def root_verb_count(instructions: Sequence[str]) -> int:
    """Distinct root verbs of imperative instructions (the report's approximation, no parser)."""
    from ..report import verb_object

    return len({pair[0] for pair in (verb_object(t) for t in instructions) if pair})


def diversity_numbers(
    instructions: Sequence[str],
    *,
    seeds: Sequence[str] | None = None,
    skills: Sequence[str] | None = None,
    pool_rouge: Sequence[float] | None = None,
    vectors: np.ndarray | None = None,
    embeddings: bool = True,
    model: str | None = None,
) -> dict[str, Any]:
    """Every figure of the module docstring for one set of instructions.

    ``seeds``: the seed instructions (ROUGE-L shares against them); else ``pool_rouge``, each row's
    ROUGE-L to its generation pool (Self-Instruct's ``scores.rouge_l_max``); neither: the shares are left
    out. ``skills``: one label per row (entropy), else left out. ``vectors``: the instructions' embeddings;
    else, with ``embeddings``, they are computed with ``model`` (default: packaged all-MiniLM-L6-v2); the
    embedding figures are left out when ``embeddings`` is False.
    """
    texts = as_texts(instructions)
    numbers: dict[str, Any] = {
        "rows": len(texts),
        "distinct_1": round(distinct_n(texts, 1), 4),
        "distinct_2": round(distinct_n(texts, 2), 4),
    }
    if vectors is None and embeddings and texts:
        from ..filters.embedding import embed

        vectors = embed(texts, model)
    if vectors is not None:
        numbers["mean_pairwise_distance"] = round(mean_pairwise_distance(vectors), 4)
        numbers["vendi_score"] = round(vendi_score(vectors), 2)
        numbers["embedding_model"] = model or "all-MiniLM-L6-v2 (packaged)"
    if skills is not None:
        numbers["skill_entropy_bits"] = round(entropy_bits(skills), 4)
        numbers["skills"] = len(set(skills))
    if seeds:
        from ..filters.rouge import RougeLIndex

        index = RougeLIndex(seeds)
        numbers.update(
            {k: round(v, 4) for k, v in rouge_shares([index.best_match(t).score for t in texts]).items()}
        )
        numbers["rouge_l_reference"] = f"nearest of {len(seeds)} seeds"
    elif pool_rouge is not None:
        numbers.update({k: round(v, 4) for k, v in rouge_shares(pool_rouge).items()})
        numbers["rouge_l_reference"] = "nearest text of the generation pool (seeds + earlier rows)"
    numbers["root_verbs"] = root_verb_count(texts)
    return numbers


def dataset_diversity(
    dataset: Any,
    *,
    column: str = "instruction",
    seeds: Sequence[str] | None = None,
    embeddings: bool = True,
    model: str | None = None,
) -> dict[str, Any] | None:
    """:func:`diversity_numbers` of a ``Dataset``'s ``column``, with its ``skill`` column and its
    ``scores.rouge_l_max`` used when present; None when the column is missing. A column other than
    ``instruction`` is named in the figures (``column``); chat messages count as their user turns."""
    if column not in dataset.column_names:
        return None
    texts = [_prompt_text(value) for value in dataset[column]]
    skills = dataset["skill"] if "skill" in dataset.column_names else None
    pool_rouge = None
    if not seeds and "scores" in dataset.column_names and len(dataset):
        scores = dataset["scores"]
        if all(isinstance(s, dict) and s.get("rouge_l_max") is not None for s in scores):
            pool_rouge = [float(s["rouge_l_max"]) for s in scores]
    numbers = diversity_numbers(
        texts, seeds=seeds, skills=skills, pool_rouge=pool_rouge, embeddings=embeddings, model=model
    )
    if column != "instruction":
        numbers["column"] = column
    return numbers


def _prompt_text(value: Any) -> Any:
    """A prompt as text: chat messages (a list of ``{"role", "content"}``) as their user turns, joined."""
    if isinstance(value, list) and all(isinstance(m, dict) for m in value):
        return "\n".join(str(m.get("content") or "") for m in value if m.get("role") == "user")
    return value


def comparison_table(runs: dict[str, dict[str, Any]]) -> str:
    """A plain-text table: one row per figure, one column per run (``-`` where a run lacks the figure)."""
    names = list(runs)
    header = ["figure", *names]
    lines = [header]
    for field in DIVERSITY_FIELDS:
        cells = [field]
        for name in names:
            value = runs[name].get(field) if runs[name] else None
            cells.append("-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value))
        lines.append(cells)
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in lines
    )
