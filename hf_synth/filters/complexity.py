"""Simple, explainable complexity features of an instruction."""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")
_CLAUSE_MARKERS = re.compile(
    r"[,;:]|\b(?:and|or|but|then|if|when|while|because|which|that|so|unless|although|whereas|after|before)\b",
    re.IGNORECASE,
)
_CONSTRAINT_CUES = re.compile(
    r"\b(?:must|should|at least|at most|no more than|exactly|only|without|avoid|include|including|each|every|"
    r"limit|maximum|minimum|step[- ]by[- ]step|steps|format|bullet|table|words|sentences|paragraphs|"
    r"explain why|justify|compare)\b",
    re.IGNORECASE,
)


def complexity_features(text: str) -> dict[str, int]:
    """``words``, ``sentences``, ``clauses`` (1 + clause markers) and ``constraints`` (constraint cues)."""
    text = text or ""
    return {
        "words": len(_WORD.findall(text)),
        "sentences": max(1, len(_SENTENCE_END.findall(text))) if text.strip() else 0,
        "clauses": 1 + len(_CLAUSE_MARKERS.findall(text)) if text.strip() else 0,
        "constraints": len(_CONSTRAINT_CUES.findall(text)),
    }
