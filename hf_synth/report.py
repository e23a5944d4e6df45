"""A quality report people would rather look at than read: a static HTML page with embedded PNG plots.

Sections: length histograms (instructions, responses), ROUGE-L to the nearest seed, verb-noun structure of
the instructions (top root verbs and their objects, as in the Self-Instruct paper), skill coverage,
per-filter drop counts and evolution lineage depth. Each section is drawn only when the data has what it
needs, and says where its numbers come from.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datasets import Dataset

from .filters.heuristics import STOP_WORDS, word_count
from .filters.rouge import RougeLIndex

logger = logging.getLogger(__name__)

_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
_SKIP_OPENERS = {"please", "now", "then", "also", "briefly", "quickly", "carefully", "kindly"}


def verb_object(instruction: str, nlp: Any = None) -> tuple[str, str] | None:
    """(root verb, its direct object) of an instruction, lower-cased lemmas.

    With a spaCy pipeline ``nlp`` this is the dependency parse's ROOT verb and its ``dobj``. Without one, an
    approximation that fits imperative instructions: the first word (after "please", "now" ...) is the verb
    and the first following word that is not a stop word is the object. Questions and texts not starting
    with a verb give ``None`` in the parse, and the approximation skips texts starting with a wh-word.
    """
    if nlp is not None:
        doc = nlp(instruction)
        for token in doc:
            if token.dep_ == "ROOT" and token.pos_ == "VERB":
                objects = [c for c in token.children if c.dep_ in ("dobj", "obj")]
                return token.lemma_.lower(), objects[0].lemma_.lower() if objects else ""
        return None
    words = [w.lower() for w in _WORD.findall(instruction or "")]
    while words and words[0] in _SKIP_OPENERS:
        words = words[1:]
    if not words or words[0] in STOP_WORDS or "'" in words[0]:  # what/how/the/i'm ...: not an imperative
        return None
    verb = words[0]
    obj = next((w for w in words[1:] if w not in STOP_WORDS and w not in _SKIP_OPENERS), "")
    return verb, obj


def _load_spacy() -> Any:
    try:
        import spacy

        return spacy.load("en_core_web_sm", disable=["ner"])
    except Exception:  # noqa: BLE001 - optional; the approximation is used and the report says so
        return None


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _histogram(values: Sequence[float], title: str, xlabel: str, bins: int = 30) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(values, bins=bins, color="#4C72B0", edgecolor="white")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("rows")
    return _png(fig)


def _bars(labels: Sequence[str], counts: Sequence[int], title: str, xlabel: str = "rows") -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, max(2.0, 0.32 * len(labels) + 1)))
    ax.barh(list(labels)[::-1], list(counts)[::-1], color="#55A868")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    return _png(fig)


def _verb_noun_plot(pairs: list[tuple[str, str]], top_verbs: int = 12, top_objects: int = 4) -> str:
    """Stacked bars: the most common root verbs, split by their most common objects (the paper's sunburst,
    flattened)."""
    import matplotlib.pyplot as plt

    verbs = [v for v, _ in Counter(v for v, _ in pairs).most_common(top_verbs)]
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.4 * len(verbs) + 1)))
    for row, verb in enumerate(reversed(verbs)):
        objects = Counter(o or "(none)" for v, o in pairs if v == verb)
        left = 0
        for obj, count in objects.most_common(top_objects):
            ax.barh(row, count, left=left, color="#8172B2", edgecolor="white")
            ax.text(left + count / 2, row, obj, ha="center", va="center", fontsize=7, color="white")
            left += count
        rest = sum(objects.values()) - left
        if rest:
            ax.barh(row, rest, left=left, color="#CCCCCC", edgecolor="white")
    ax.set_yticks(range(len(verbs)), list(reversed(verbs)))
    ax.set_xlabel("instructions")
    ax.set_title("Root verbs and their most common objects")
    return _png(fig)


def build_report(
    dataset: Dataset,
    *,
    rejected: Dataset | None = None,
    seeds: Sequence[str] | None = None,
    coverage: dict[str, Any] | None = None,
    review: dict[str, Any] | None = None,
    title: str = "hf-synth dataset report",
    use_spacy: bool = True,
) -> tuple[str, dict[str, Any]]:
    """Render the report; returns (HTML text, the numbers behind it)."""
    import matplotlib

    matplotlib.use("Agg")
    sections: list[tuple[str, str, str]] = []  # (title, note, base64 png)
    numbers: dict[str, Any] = {"rows": len(dataset)}
    columns = set(dataset.column_names)

    for column in ("instruction", "output"):
        if column in columns and len(dataset):
            lengths = [word_count(t or "") for t in dataset[column]]
            numbers[f"{column}_words"] = lengths
            sections.append(
                (
                    f"Length of {column}s",
                    f"words per {column}; {len(lengths)} rows",
                    _histogram(lengths, f"{column} length", "words"),
                )
            )

    if "instruction" in columns and len(dataset):
        if seeds:
            index = RougeLIndex(seeds)
            scores = [index.best_match(t).score for t in dataset["instruction"]]
            note = f"exact ROUGE-L F of each instruction to its nearest of {len(seeds)} seeds"
        elif "scores" in columns and dataset[0]["scores"] and "rouge_l_max" in dataset[0]["scores"]:
            scores = [s["rouge_l_max"] for s in dataset["scores"]]
            note = (
                "ROUGE-L F to the nearest text of the pool (seeds + earlier rows) when the row was generated"
            )
        else:
            scores = None
        if scores is not None:
            numbers["rouge_l_to_seeds"] = scores
            sections.append(
                (
                    "ROUGE-L to the nearest seed",
                    note,
                    _histogram(scores, "ROUGE-L to nearest seed", "ROUGE-L F", bins=20),
                )
            )

        nlp = _load_spacy() if use_spacy else None
        pairs = [p for p in (verb_object(t, nlp) for t in dataset["instruction"]) if p]
        if pairs:
            numbers["verb_object"] = Counter(f"{v} {o}".strip() for v, o in pairs).most_common(30)
            method = (
                "spaCy dependency parse (ROOT verb, dobj)"
                if nlp
                else (
                    "approximation for imperative instructions (first word, first content word after it); install "
                    "spaCy with an English model for a dependency parse"
                )
            )
            sections.append(
                (
                    "Verb–noun structure",
                    f"{len(pairs)} of {len(dataset)} instructions; {method}",
                    _verb_noun_plot(pairs),
                )
            )

    if coverage:
        skills = sorted(coverage["skills"].items(), key=lambda kv: -kv[1]["count"])
        numbers["coverage"] = coverage
        missing = ", ".join(coverage["missing"]) or "none"
        sections.append(
            (
                "Skill coverage",
                f"embedding nearest skill; missing: {missing}",
                _bars([s for s, _ in skills], [r["count"] for _, r in skills], "Skills"),
            )
        )

    reasons: Counter = Counter()
    if rejected is not None and "filter_reasons" in rejected.column_names:
        reasons.update(r for row in rejected["filter_reasons"] for r in row)
    elif rejected is not None and "elimination_reasons" in rejected.column_names:
        reasons.update(r for row in rejected["elimination_reasons"] for r in row)
    if reasons:
        numbers["drops"] = dict(reasons.most_common())
        top = reasons.most_common(20)
        sections.append(
            (
                "Rows dropped per filter",
                f"{len(rejected)} rejected rows; a row may have several reasons",
                _bars([r for r, _ in top], [c for _, c in top], "Drops per reason"),
            )
        )

    if review and review.get("reviewed"):
        numbers["review"] = review
        groups = [(f"skill {k}", v) for k, v in review.get("by_skill", {}).items()]
        groups += [(f"operation {k}", v) for k, v in review.get("by_operation", {}).items()]
        rate = review["acceptance_rate"]
        note = (
            f"a person reviewed {review['reviewed']} of {review['rows_in_review']} rows: accepted "
            f"{review['accepted']}, edited {review['edited']}, rejected {review['rejected']} (acceptance "
            f"{rate:.1%}); bars: acceptance rate per group (reviewed rows in brackets)"
        )
        sections.append(
            (
                "Human review",
                note,
                _bars(
                    [f"{name} ({v['reviewed']})" for name, v in groups] or ["all"],
                    [round(100 * v["acceptance_rate"], 1) for _, v in groups] or [round(100 * rate, 1)],
                    "Acceptance rate",
                    xlabel="% accepted or edited",
                ),
            )
        )

    if "root_id" in columns and "round" in columns and len(dataset):
        depths = Counter(dataset["round"])
        numbers["lineage_depth"] = dict(sorted(depths.items()))
        sections.append(
            (
                "Evolution lineage depth",
                "rounds of evolution behind each kept row",
                _bars(
                    [f"round {d}" for d in sorted(depths)],
                    [depths[d] for d in sorted(depths)],
                    "Lineage depth",
                ),
            )
        )

    body = "\n".join(
        f'<section><h2>{html.escape(t)}</h2><p class="note">{html.escape(n)}</p>'
        f'<img alt="{html.escape(t)}" src="data:image/png;base64,{png}"></section>'
        for t, n, png in sections
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:900px;margin:2em auto;color:#222}}
section{{margin:2em 0}} .note{{color:#666;font-size:90%}} img{{max-width:100%}}</style></head>
<body><h1>{html.escape(title)}</h1><p>{len(dataset)} rows.</p>
{body}
</body></html>
"""
    return page, numbers


def write_report(path: str | Path, dataset: Dataset, **kwargs: Any) -> dict[str, Any]:
    """Write :func:`build_report`'s HTML to ``path``; returns the numbers."""
    page, numbers = build_report(dataset, **kwargs)
    Path(path).write_text(page, encoding="utf-8")
    logger.info("Wrote the report to %s", path)
    return numbers
