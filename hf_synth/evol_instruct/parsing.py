"""Parsers for evolved instructions and judge verdicts. They never raise: problems come back as ``error``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..answers import parse_yes_no

_LEADING_LABEL = re.compile(
    r"^\s*[*_#]*\s*(?:rewritten instruction|new instruction|evolved instruction|instruction|rewritten prompt|"
    r"new prompt|prompt)\s*[*_]*\s*:\s*[*_]*\s*",
    re.IGNORECASE,
)
_STOP_LABEL = re.compile(
    r"^\s*[*_#]*\s*(?:answer|response|output|explanation|note|solution|reasoning|original instruction)\s*[*_]*\s*:",
    re.IGNORECASE | re.MULTILINE,
)


@dataclass
class ParsedEvolution:
    """An evolved instruction, or ``error`` (``empty_output``) when the reply holds none."""

    instruction: str = ""
    error: str | None = None


def parse_evolved_instruction(text: str) -> ParsedEvolution:
    """Take the instruction from a reply that starts after the prefill label (``Rewritten instruction:``).

    Leading labels are removed (also repeated ones), and the text is cut at the first blank line or at a
    label that starts an answer or an explanation, so answers the teacher adds are not taken as part of the
    instruction. Wrapping quotes and markdown emphasis are removed.
    """
    if not isinstance(text, str):
        return ParsedEvolution(error="empty_output")
    text = text.replace("\r\n", "\n").strip()
    for _ in range(3):
        stripped = _LEADING_LABEL.sub("", text, count=1).lstrip()
        if stripped == text:
            break
        text = stripped
    stop = _STOP_LABEL.search(text)
    if stop:
        text = text[: stop.start()]
    text = re.split(r"\n\s*\n", text, maxsplit=1)[0].strip()
    if text.count("**") == 1:  # one half of a bold pair was eaten with the label
        text = text.replace("**", "").strip()
    for left, right in (("**", "**"), ('"', '"'), ("“", "”"), ("'", "'"), ("`", "`")):
        if len(text) > len(left) + len(right) and text.startswith(left) and text.endswith(right):
            text = text[len(left) : -len(right)].strip()
    if not text:
        return ParsedEvolution(error="empty_output")
    return ParsedEvolution(instruction=text)


#: The judge's questions, asked one per prompt (small models answer one short question far more reliably
#: than they fill in a multi-field form). ``more_complex`` is asked for in-depth operations only.
JUDGE_QUESTIONS: tuple[str, ...] = ("coherent", "solvable", "more_complex", "score")


@dataclass
class JudgeVerdict:
    """What the judge said; ``None`` where a question was not asked or its answer did not parse.
    ``parsed`` is False when any asked question got no usable answer (listed in ``error``)."""

    coherent: bool | None = None
    solvable: bool | None = None
    more_complex: bool | None = None
    score: float | None = None
    parsed: bool = False
    error: str = ""

    def to_dict(self) -> dict:
        return {
            "coherent": self.coherent,
            "solvable": self.solvable,
            "more_complex": self.more_complex,
            "score": self.score,
            "parsed": self.parsed,
            "error": self.error,
        }


_SCORE = re.compile(
    r"^[\s*_\[(\"']*(?:score\s*[*_]*\s*[:=\-]?\s*[*_]*\s*)?(\d+(?:[.,]\d+)?)(?:\s*(?:/|out of)\s*(\d+(?:\.\d+)?))?",
    re.IGNORECASE,
)


def parse_score(text: str, scale: float = 10.0) -> float | None:
    """A score at the start of ``text`` as a float on ``scale``: "7", "7.5", "7,5", "Score: 8/10",
    "4 out of 5" (rescaled). Values outside 0..scale are rejected (``None``), never clipped into range."""
    match = _SCORE.match(text or "")
    if not match:
        return None
    value = float(match.group(1).replace(",", "."))
    if match.group(2):
        denominator = float(match.group(2))
        if denominator <= 0:
            return None
        value = value / denominator * scale
    return value if 0 <= value <= scale else None


def combine_verdict(answers: dict[str, str]) -> JudgeVerdict:
    """Build a verdict from the judge's raw answer to each question asked (``{question: reply}``)."""
    verdict = JudgeVerdict()
    missing = []
    for question, reply in answers.items():
        value = parse_score(reply) if question == "score" else parse_yes_no(reply)
        setattr(verdict, question, value)
        if value is None:
            missing.append(question)
    verdict.parsed = bool(answers) and not missing
    verdict.error = "unparsable:" + ",".join(missing) if missing else ""
    return verdict
