"""Cheap rule filters. Each returns the list of reasons a text fails (empty list = keep)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

#: Tasks a text-only model cannot do (Self-Instruct's list, plus a few the paper's authors hit later).
DEFAULT_BLOCKED_KEYWORDS: tuple[str, ...] = (
    "image",
    "images",
    "graph",
    "graphs",
    "picture",
    "pictures",
    "file",
    "files",
    "map",
    "maps",
    "draw",
    "plot",
    "go to",
    "video",
    "audio",
    "music",
    "flowchart",
    "diagram",
    "photo",
    "photos",
    "screenshot",
    "attached",
)

#: Openings of replies in which the teacher refuses or talks about itself instead of doing the task.
REFUSAL_PATTERNS: tuple[str, ...] = (
    r"\bas an ai\b",
    r"\bas a language model\b",
    r"\bas an ai language model\b",
    r"\bi am an ai\b",
    r"\bi'?m an ai\b",
    r"\bi(?: am|'m) (?:sorry|unable|not able)\b",
    r"\bi cannot (?:help|assist|provide|do)\b",
    r"\bi can'?t (?:help|assist|provide|do)\b",
    r"\bi apologi[sz]e\b",
    r"\bi do not have (?:access|the ability)\b",
    r"\bi don'?t have (?:access|the ability)\b",
)
_REFUSAL = re.compile("|".join(REFUSAL_PATTERNS), re.IGNORECASE)

#: Common English function words: a text made only of these says nothing.
STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "then",
        "else",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "about",
        "as",
        "into",
        "from",
        "up",
        "down",
        "out",
        "over",
        "under",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "am",
        "do",
        "does",
        "did",
        "have",
        "has",
        "had",
        "this",
        "that",
        "these",
        "those",
        "it",
        "its",
        "i",
        "you",
        "he",
        "she",
        "we",
        "they",
        "me",
        "him",
        "her",
        "us",
        "them",
        "my",
        "your",
        "his",
        "our",
        "their",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "not",
        "no",
        "yes",
        "so",
        "too",
        "very",
        "can",
        "could",
        "will",
        "would",
        "shall",
        "should",
        "may",
        "might",
        "must",
        "just",
        "also",
        "than",
        "there",
        "here",
        "all",
        "any",
        "some",
    ]
)
_WORD = re.compile(r"\w+", re.UNICODE)


def word_count(text: str) -> int:
    return len(_WORD.findall(text or ""))


def length_reasons(text: str, min_words: int, max_words: int, *, field: str = "instruction") -> list[str]:
    n = word_count(text)
    if n < min_words:
        return [f"{field}_too_short"]
    if n > max_words:
        return [f"{field}_too_long"]
    return []


def content_reasons(text: str, min_words: int, *, field: str = "instruction") -> list[str]:
    """Too few words, or nothing but punctuation and stop words."""
    words = _WORD.findall((text or "").lower())
    if not words:
        return [f"{field}_no_words"]
    if len(words) < min_words:
        return [f"{field}_too_short"]
    if all(w in STOP_WORDS or w.isdigit() for w in words):
        return [f"{field}_only_stop_words"]
    return []


def keyword_reasons(text: str, keywords: Iterable[str]) -> list[str]:
    """Whole-word (or whole-phrase) matches of blocked keywords, case-insensitive."""
    lowered = (text or "").lower()
    for keyword in keywords:
        if re.search(rf"(?<!\w){re.escape(keyword.lower())}(?!\w)", lowered):
            return [f"blocked_keyword:{keyword}"]
    return []


def start_reasons(text: str) -> list[str]:
    """Instructions must start with a letter (any script): not punctuation, digits or symbols."""
    stripped = (text or "").lstrip()
    if not stripped:
        return ["empty_instruction"]
    if not unicodedata.category(stripped[0]).startswith("L"):
        return ["bad_start"]
    return []


def refusal_reasons(text: str) -> list[str]:
    """Flag "As an AI language model…" style refusals and self-talk in the first 300 characters."""
    return ["refusal"] if _REFUSAL.search((text or "")[:300]) else []


def normalized_words(text: str) -> str:
    """Lower-cased words joined by single spaces (punctuation and spacing ignored), for exact comparisons."""
    return " ".join(_WORD.findall((text or "").lower()))


def output_reasons(instruction: str, input_text: str, output: str) -> list[str]:
    """Empty outputs, and outputs that merely copy the instruction or the input."""
    if not (output or "").strip():
        return ["empty_output"]
    out = normalized_words(output)
    if not out:
        return ["output_no_words"]
    if out == normalized_words(instruction):
        return ["output_copies_instruction"]
    if input_text and out == normalized_words(input_text):
        return ["output_copies_input"]
    return []


_OPENERS = {"(": ")", "[": "]", "{": "}"}


def hygiene_reasons(text: str, *, field: str = "output") -> list[str]:
    """Text broken as text, whatever it says: U+FFFD (bytes that did not decode, e.g. a token split inside
    a multi-byte character), control characters other than newline/tab, a bracket opened and never
    closed, or an unclosed code fence. Reasons are ``<field>_replacement_character``,
    ``<field>_control_characters``, ``<field>_unbalanced``. Extra closers are allowed ("a) b) c)")."""
    text = text or ""
    if "\ufffd" in text:
        return [f"{field}_replacement_character"]
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t\r" for c in text):
        return [f"{field}_control_characters"]
    if text.count("```") % 2 or any(text.count(o) > text.count(c) for o, c in _OPENERS.items()):
        return [f"{field}_unbalanced"]
    return []


def truncated_reasons(completion_tokens: int, max_new_tokens: int, *, field: str = "output") -> list[str]:
    """``<field>_truncated`` when the generation stopped at its token limit (cut mid-text)."""
    return [f"{field}_truncated"] if max_new_tokens and completion_tokens >= max_new_tokens else []


def instruction_reasons(
    instruction: str, *, min_words: int, max_words: int, blocked_keywords: Sequence[str]
) -> list[str]:
    """All cheap instruction-level checks together, in the order a reader would apply them."""
    return (
        start_reasons(instruction)
        or hygiene_reasons(instruction, field="instruction")
        or length_reasons(instruction, min_words, max_words)
        or keyword_reasons(instruction, blocked_keywords)
    )
