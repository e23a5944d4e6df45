"""Filters: rule checks, ROUGE-L novelty, near-duplicates, length and complexity, as score columns plus
``Dataset.filter``."""

from .complexity import complexity_features
from .dataset_filters import (
    add_filter_columns,
    complexity_filter,
    length_filter,
    minhash_dedup_filter,
    reading_grade,
    rouge_novelty_filter,
    split_filtered,
)
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
from .registry import FILTERS, resolve_filters, run_filters
from .rouge import Match, NoveltyDecision, RougeLIndex, greedy_novelty, lcs_length, rouge_l_f, rouge_tokens
from .rouge_fast import NoveltyResult, greedy_novelty_fast

__all__ = [
    "FILTERS",
    "resolve_filters",
    "run_filters",
    "NoveltyResult",
    "add_filter_columns",
    "complexity_features",
    "complexity_filter",
    "greedy_novelty_fast",
    "length_filter",
    "minhash_dedup_filter",
    "reading_grade",
    "rouge_novelty_filter",
    "split_filtered",
    "DEFAULT_BLOCKED_KEYWORDS",
    "STOP_WORDS",
    "content_reasons",
    "Match",
    "NoveltyDecision",
    "RougeLIndex",
    "greedy_novelty",
    "instruction_reasons",
    "keyword_reasons",
    "lcs_length",
    "length_reasons",
    "output_reasons",
    "refusal_reasons",
    "rouge_l_f",
    "rouge_tokens",
    "start_reasons",
    "word_count",
]
