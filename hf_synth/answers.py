"""Short verdicts read out of model replies: one yes/no reader for every step that asks a yes/no question.

Used by Self-Instruct's task-type question, Evol-Instruct's judge and self-check, the paraphrase task
check and the response judge. A verdict must open the reply (after markup such as ``**``, ``[``, quotes
or a dash): "Yes.", "[No]", "**true**". An echoed "Yes or No" / "Yes/No" is no answer, and neither is a
verdict buried later in a sentence ("The answer could be yes") — such replies are counted as unparsable
(``None``) by the callers, never guessed.
"""

from __future__ import annotations

import re

_VERDICT = re.compile(
    r"^[\s\W_]*(yes|no|true|false)\b(?!\s*(?:or|/|\|)\s*(?:yes|no|true|false)\b)[\s*_\])\"'.,:;-]*(.*)$",
    re.IGNORECASE | re.DOTALL,
)


def split_yes_no(text: str | None) -> tuple[bool | None, str]:
    """(verdict, the rest of the reply): ``("Yes. It lists three tips.")`` -> ``(True, "It lists three
    tips.")``; no verdict at the start -> ``(None, the whole reply stripped)``."""
    if not isinstance(text, str):
        return None, ""
    match = _VERDICT.match(text)
    if not match:
        return None, text.strip()
    return match.group(1).lower() in ("yes", "true"), match.group(2).strip()


def parse_yes_no(text: str | None) -> bool | None:
    """The verdict opening ``text`` (see :func:`split_yes_no`), or ``None``."""
    return split_yes_no(text)[0]
