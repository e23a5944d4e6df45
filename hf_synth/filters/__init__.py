"""Filters: rule checks, ROUGE-L novelty, near-duplicates, length and complexity, as score columns plus
``Dataset.filter``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "complexity": ["complexity_features"],
        "dataset_filters": [
            "add_filter_columns",
            "complexity_filter",
            "length_filter",
            "minhash_dedup_filter",
            "reading_grade",
            "reason_key",
            "rouge_novelty_filter",
            "split_filtered",
        ],
        "decontaminate": [
            "Decontaminator",
            "EvaluationSet",
            "contamination_counts",
            "decontaminate_filter",
            "load_evaluation_set",
            "normalised_tokens",
        ],
        "heuristics": [
            "DEFAULT_BLOCKED_KEYWORDS",
            "STOP_WORDS",
            "content_reasons",
            "instruction_reasons",
            "keyword_reasons",
            "length_reasons",
            "output_reasons",
            "refusal_reasons",
            "start_reasons",
            "word_count",
        ],
        "learnability": ["learnability_filter", "learnability_with_models"],
        "filter_step": ["filter_dataset"],
        "registry": ["FILTERS", "resolve_filters", "run_filters"],
        "rouge": [
            "Match",
            "NoveltyDecision",
            "RougeLIndex",
            "greedy_novelty",
            "lcs_length",
            "rouge_l_f",
            "rouge_tokens",
        ],
        "rouge_fast": ["NoveltyResult", "greedy_novelty_fast"],
    },
)

if TYPE_CHECKING:  # pragma: no cover
    from .complexity import complexity_features
    from .dataset_filters import (
        add_filter_columns,
        complexity_filter,
        length_filter,
        minhash_dedup_filter,
        reading_grade,
        reason_key,
        rouge_novelty_filter,
        split_filtered,
    )
    from .decontaminate import (
        Decontaminator,
        EvaluationSet,
        contamination_counts,
        decontaminate_filter,
        load_evaluation_set,
        normalised_tokens,
    )
    from .filter_step import filter_dataset
    from .heuristics import (
        DEFAULT_BLOCKED_KEYWORDS,
        STOP_WORDS,
        content_reasons,
        instruction_reasons,
        keyword_reasons,
        length_reasons,
        output_reasons,
        refusal_reasons,
        start_reasons,
        word_count,
    )
    from .learnability import learnability_filter, learnability_with_models
    from .registry import FILTERS, resolve_filters, run_filters
    from .rouge import (
        Match,
        NoveltyDecision,
        RougeLIndex,
        greedy_novelty,
        lcs_length,
        rouge_l_f,
        rouge_tokens,
    )
    from .rouge_fast import NoveltyResult, greedy_novelty_fast
