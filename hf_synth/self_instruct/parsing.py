"""Parsers for what a teacher model really emits in Self-Instruct.

Every parser returns a result with an ``error`` field instead of raising: malformed output is counted and
reported by the pipeline, never allowed to crash a run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..answers import parse_yes_no  # noqa: F401 - the step's verdict reader, re-exported

# "7. Do X", "7) Do X", "**7.** Do X", "Task 7: Do X", "#7 - Do X", "Instruction 7. Do X"
_NUMBERED = re.compile(
    r"^\s*(?:[*_]{1,2})?\s*(?:(?:task|instruction|question|prompt)\s*)?#?\s*(\d{1,3})\s*[.):\]]"
    r"(?:\s*[*_]{1,2})?\s*(?P<body>.*)$",
    re.IGNORECASE,
)
_NUMBERED_DASH = re.compile(r"^\s*(?:task|instruction)?\s*#?\s*(\d{1,3})\s+-\s+(?P<body>.*)$", re.IGNORECASE)
_BULLET = re.compile(r"^\s*[-*•]\s+(?P<body>.+)$")
_LABEL_PREFIX = re.compile(r"^(?:task|instruction|new task|question|prompt)\s*:\s*", re.IGNORECASE)
_WS = re.compile(r"\s+")


def normalize_space(text: str) -> str:
    """Collapse all runs of white space (newlines included) into single spaces."""
    return _WS.sub(" ", text).strip()


def _clean_item(text: str) -> str:
    text = normalize_space(text)
    text = _LABEL_PREFIX.sub("", text)
    for _ in range(2):  # strip wrapping markdown emphasis and quotes, e.g. **"Do X"**
        text = text.strip()
        for left, right in (("**", "**"), ("__", "__"), ('"', '"'), ("“", "”"), ("'", "'"), ("`", "`")):
            if len(text) > len(left) + len(right) and text.startswith(left) and text.endswith(right):
                inner = text[len(left) : -len(right)]
                if left not in inner:
                    text = inner
    return text.strip()


def _split_inline(number: int, body: str) -> list[tuple[int, str]]:
    """Split "Do X. 8. Do Y" into items when the inline number is exactly the next one."""
    items = [(number, body)]
    while True:
        current_number, current = items[-1]
        match = re.search(rf"(?:^|\s){current_number + 1}\s*[.)]\s+(?=\S)", current)
        if not match or match.start() == 0:
            return items
        items[-1] = (current_number, current[: match.start()])
        items.append((current_number + 1, current[match.end() :]))


@dataclass
class ParsedList:
    """Instructions parsed from one model reply. ``error`` is set when nothing usable was found."""

    items: list[str] = field(default_factory=list)
    error: str | None = None
    dropped_truncated: bool = False


def parse_instruction_list(text: str, *, truncated: bool = False, max_items: int | None = None) -> ParsedList:
    """Parse a numbered or bulleted list of instructions.

    Only lines that carry a list marker start an item; a line right below an item (no blank line between)
    continues it, so multi-line items survive. Preambles ("Here are some tasks:") and closing commentary
    are ignored, not taken as instructions. If ``truncated`` (the model hit ``max_new_tokens``), the last
    item may be cut off mid-sentence and is dropped.
    """
    if not isinstance(text, str) or not text.strip():
        return ParsedList(error="empty_output")
    raw: list[tuple[int | None, str]] = []
    open_item = False
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        match = _NUMBERED.match(line) or _NUMBERED_DASH.match(line)
        if match:
            raw.append((int(match.group(1)), match.group("body")))
            open_item = True
            continue
        bullet = _BULLET.match(line)
        if bullet and (not raw or raw[-1][0] is None or not open_item):
            raw.append((None, bullet.group("body")))
            open_item = True
            continue
        if not line.strip():
            open_item = False
        elif open_item and raw:
            number, body = raw[-1]
            raw[-1] = (number, body + " " + line.strip())
    items: list[str] = []
    for number, body in raw:
        pieces = _split_inline(number, body) if number is not None else [(None, body)]
        items.extend(_clean_item(piece) for _, piece in pieces)
    dropped = False
    if truncated and items:
        items.pop()
        dropped = True
    items = [item for item in items if item]
    if max_items is not None:
        items = items[:max_items]
    if not items:
        return ParsedList(error="no_list_items", dropped_truncated=dropped)
    return ParsedList(items=items, dropped_truncated=dropped)


_SECTION = re.compile(
    r"^[ \t]*[*_#]*[ \t]*(?P<label>class label|label|input|output|answer|response|ideal output|"
    r"task|new task|instruction|user|assistant|example|note)"
    r"[ \t]*[*_]*[ \t]*:[ \t]*[*_]*",
    re.IGNORECASE | re.MULTILINE,
)
_LABEL_ALIASES = {
    "class label": "label",
    "label": "label",
    "input": "input",
    "output": "output",
    "answer": "output",
    "response": "output",
    "ideal output": "output",
    # Labels that only end the section before them: the model went on to a new turn or example.
    "task": "end",
    "new task": "end",
    "instruction": "end",
    "user": "end",
    "assistant": "end",
    "example": "end",
    "note": "end",
}
_NO_INPUT = {
    "",
    "<none>",
    "none",
    "<noinput>",
    "no input",
    "n/a",
    "na",
    "-",
    "<no input>",
    "(none)",
    "null",
    "empty",
}


@dataclass
class ParsedInstance:
    """Input/output of one task instance. ``error`` is set when the reply lacks a required part."""

    input: str = ""
    output: str = ""
    error: str | None = None


def _sections(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    matches = list(_SECTION.finditer(text))
    for i, match in enumerate(matches):
        name = _LABEL_ALIASES[match.group("label").lower()]
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        if name == "end":
            if found:
                break
            continue
        if name in found:  # the model began a second example: keep the first one only
            break
        found[name] = text[match.end() : end].strip()
    return found


def _clean_input(value: str) -> str:
    value = value.strip()
    return "" if value.strip("\"'`*. ").lower() in _NO_INPUT or value.lower() in _NO_INPUT else value


def parse_instance(text: str, *, output_first: bool = False) -> ParsedInstance:
    """Parse ``Input: … Output: …`` (input-first) or ``Class label: … Input: …`` (output-first) replies."""
    if not isinstance(text, str) or not text.strip():
        return ParsedInstance(error="empty_output")
    sections = _sections(text.replace("\r\n", "\n"))
    if output_first:
        label = sections.get("label", "") or sections.get("output", "")
        label = label.split("\n")[0].strip().strip("*\"'` ").rstrip(".")
        value = _clean_input(sections.get("input", ""))
        if not label:
            return ParsedInstance(error="missing_label")
        if not value:
            return ParsedInstance(error="missing_input")
        return ParsedInstance(input=value, output=label)
    if "output" not in sections:
        return ParsedInstance(error="missing_output")
    output = sections["output"].strip()
    if not output:
        return ParsedInstance(error="empty_output")
    return ParsedInstance(input=_clean_input(sections.get("input", "")), output=output)


_CLASSIFICATION_CUES = re.compile(
    r"\b(classify|classification|categori[sz]e|which category|what category|label (?:the|each|this)|"
    r"sentiment|positive or negative|true or false|yes or no|spam|is (?:this|it|the \w+) (?:a|an) \w+ or|"
    r"(?:identify|determine|decide|tell me|detect) (?:whether|if)|whether (?:the|this|it) .* or not|"
    r"which of the following|multiple choice|fact or opinion|correct or incorrect|agree or disagree)\b",
    re.IGNORECASE,
)


def looks_like_classification(instruction: str) -> bool:
    """Keyword heuristic for classification-like tasks (used alone, or when the model's verdict is unparsable)."""
    return bool(_CLASSIFICATION_CUES.search(instruction or ""))
