"""Filters: rule checks and ROUGE-L novelty, used as score columns plus ``Dataset.filter``."""

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
from .rouge import Match, NoveltyDecision, RougeLIndex, greedy_novelty, lcs_length, rouge_l_f, rouge_tokens

__all__ = [
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
