"""A quality report people would rather look at than read: a static HTML page with embedded PNG plots.

Sections: length histograms (instructions, responses), ROUGE-L to the nearest seed (or, without seeds, to
the nearest text of the generation pool), verb-noun structure of the instructions (top root verbs and their
direct objects, as in the Self-Instruct paper), skill coverage (saying what labelled the skills),
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

_TOKEN = re.compile(r"[A-Za-z][A-Za-z'-]*|\d+(?:[.,]\d+)*|[^\w\s]")
_SKIP_OPENERS = {"please", "now", "then", "also", "briefly", "quickly", "carefully", "kindly"}
#: After the verb, these open a clause or a question, not a noun phrase: the verb has no direct object.
_CLAUSE_OPENERS = {"how", "why", "what", "when", "where", "whether", "if", "which", "who", "that"}
#: Words that come before the head noun of an object phrase without being it: determiners, numbers and
#: quantifiers (stop words aside).
# fmt: off
_PRE_NOUN = frozenset({
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twenty", "hundred",
    "few", "several", "many", "more", "most", "each", "every", "both", "another", "other", "such", "own",
    "following", "given", "next", "first", "second", "last",
})
#: Adjectives common in instructions; with the suffixes below, what the approximation takes for an
#: adjective (the head noun is the last word of the phrase that is not one).
_ADJECTIVES = frozenset({
    "short", "long", "brief", "simple", "new", "good", "bad", "great", "small", "big", "large", "little",
    "old", "young", "quick", "easy", "hard", "funny", "formal", "informal", "detailed", "concise", "clear",
    "different", "similar", "common", "popular", "famous", "best", "main", "key", "basic", "important",
    "interesting", "unique", "creative", "persuasive", "professional", "personal", "healthy", "happy",
    "sad", "friendly", "positive", "negative", "true", "false", "full", "complete", "random", "real",
    "general", "original", "fictional", "hypothetical", "technical", "scientific", "historical",
    "cultural", "social", "local",
})
# fmt: on
_ADJECTIVE_SUFFIXES = ("ful", "ous", "ive", "less", "able", "ible", "ical", "ish")


def _is_adjective(word: str) -> bool:
    return word in _ADJECTIVES or (len(word) > 5 and word.endswith(_ADJECTIVE_SUFFIXES))


def _before_noun(token: str) -> bool:
    """A determiner, pronoun ("me" in "tell me a story"), number or other stop word before an object."""
    return token in STOP_WORDS or token in _PRE_NOUN or token[0].isdigit()


def _spacy_object(verb: Any) -> str:
    """The head noun of the ROOT verb's direct object (its ``dobj``/``obj`` child); when the parser made an
    adjective or a determiner the object, the first noun below it."""
    objects = [c for c in verb.children if c.dep_ in ("dobj", "obj")]
    if not objects:
        return ""
    obj = objects[0]
    if obj.pos_ not in ("NOUN", "PROPN", "PRON"):
        nouns = [t for t in obj.subtree if t.pos_ in ("NOUN", "PROPN")]
        obj = nouns[0] if nouns else obj
    return obj.lemma_.lower()


def verb_object(instruction: str, nlp: Any = None) -> tuple[str, str] | None:
    """(root verb, the head noun of its direct object) of an instruction, lower-cased ("Create a short poem
    about the sea" gives ``("create", "poem")``; "" when the verb has no direct object).

    With a spaCy pipeline ``nlp`` this is the dependency parse's ROOT verb and its ``dobj`` (lemmas). Without
    one, an approximation that fits imperative instructions: the first word (after "please", "now" ...) is
    the verb; the object phrase starts after determiners, pronouns such as "me" and numbers and runs to the
    first stop word, preposition or punctuation; its head noun is the last word of that phrase that is not
    an adjective. A verb followed by "how", "what", "that" ... takes a clause, not an object (""). Questions
    and texts not starting with a verb give ``None`` in the parse, and the approximation skips texts
    starting with a wh-word.
    """
    if nlp is not None:
        doc = nlp(instruction)
        for token in doc:
            if token.dep_ == "ROOT" and token.pos_ == "VERB":
                return token.lemma_.lower(), _spacy_object(token)
        return None
    tokens = [t.lower() for t in _TOKEN.findall(instruction or "")]
    while tokens and tokens[0] in _SKIP_OPENERS:
        tokens = tokens[1:]
    if not tokens or not tokens[0][0].isalpha() or tokens[0] in STOP_WORDS or "'" in tokens[0]:
        return None  # what/how/the/i'm ...: not an imperative
    verb, rest = tokens[0], tokens[1:]
    start = 0
    while start < len(rest) and rest[start] not in _CLAUSE_OPENERS and _before_noun(rest[start]):
        start += 1
    if start < len(rest) and rest[start] in _CLAUSE_OPENERS:
        return verb, ""  # "Explain how rainbows form": a clause, no direct object
    phrase: list[str] = []
    for token in rest[start:]:
        if phrase and all(_is_adjective(w) for w in phrase) and token in (",", "and", "or"):
            continue  # "a short, funny poem": the phrase goes on after a list of adjectives
        if not token[0].isalpha() or token in STOP_WORDS or token in _SKIP_OPENERS:
            break
        phrase.append(token)
    nouns = [w for w in phrase if not _is_adjective(w)]
    return verb, (nouns or phrase or [""])[-1]


def _load_spacy() -> Any:
    """spaCy's English pipeline, or None (the approximation is used and the report says so). Not
    installed is the ordinary case; any other failure (no model, a broken install) is logged with its
    error, so a parse that was asked for never silently turns into the approximation."""
    try:
        import spacy
    except ImportError:
        return None
    try:
        return spacy.load("en_core_web_sm", disable=["ner"])
    except Exception as err:  # noqa: BLE001 - optional: reported, then the approximation
        logger.warning(
            "spaCy is installed but its English model did not load (%s: %s); verb-object pairs use the "
            "approximation. Install it with `python -m spacy download en_core_web_sm`.",
            type(err).__name__,
            err,
        )
        return None


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _whole_numbers(axis) -> None:
    """Ticks of a count axis at whole numbers only (no 0.25 or 1.75 rows)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _histogram(values: Sequence[float], title: str, xlabel: str, bins: int = 30) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(values, bins=bins, color="#4C72B0", edgecolor="white")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("rows")
    _whole_numbers(ax.yaxis)
    if all(float(v).is_integer() for v in values):  # word counts: whole numbers on the x axis too
        _whole_numbers(ax.xaxis)
    return _png(fig)


def _bars(
    labels: Sequence[str], counts: Sequence[float], title: str, xlabel: str = "rows", counted: bool = True
) -> str:
    """Horizontal bars; ``counted``: the values are counts, ticked at whole numbers."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, max(2.0, 0.32 * len(labels) + 1)))
    ax.barh(list(labels)[::-1], list(counts)[::-1], color="#55A868")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    if counted:
        _whole_numbers(ax.xaxis)
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
    _whole_numbers(ax.xaxis)
    ax.set_title("Root verbs and their most common direct objects")
    return _png(fig)


def build_report(
    dataset: Dataset,
    *,
    rejected: Dataset | None = None,
    seeds: Sequence[str] | None = None,
    coverage: dict[str, Any] | None = None,
    review: dict[str, Any] | None = None,
    diversity: dict[str, Any] | None = None,
    title: str = "hf-synth dataset report",
    use_spacy: bool = True,
) -> tuple[str, dict[str, Any]]:
    """Render the report; returns (HTML text, the numbers behind it). ``diversity``: the figures of
    :func:`~hf_synth.curation.diversity.dataset_diversity`, shown as a table."""
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
        scores = None
        if seeds:  # what the seeds are given for: each instruction against the seeds alone
            index = RougeLIndex(seeds)
            scores = [index.best_match(t).score for t in dataset["instruction"]]
            nearest = "the nearest seed"
            note = f"exact ROUGE-L F of each instruction to its nearest of {len(seeds)} seeds"
        elif "scores" in columns and dataset[0]["scores"] and "rouge_l_max" in dataset[0]["scores"]:
            # Self-Instruct's own score: against the seeds and every instruction kept before it
            scores = [s["rouge_l_max"] for s in dataset["scores"]]
            nearest = "the nearest earlier text"
            note = (
                "ROUGE-L F of each instruction to the nearest text of the pool (seeds + earlier rows) when "
                "the row was generated; pass --seeds to compare with the seeds alone"
            )
        if scores is not None:
            numbers["rouge_l_to_seeds" if seeds else "rouge_l_to_pool"] = scores
            sections.append(
                (
                    f"ROUGE-L to {nearest}",
                    note,
                    _histogram(scores, f"ROUGE-L to {nearest}", "ROUGE-L F", bins=20),
                )
            )

        nlp = _load_spacy() if use_spacy else None
        pairs = [p for p in (verb_object(t, nlp) for t in dataset["instruction"]) if p]
        if pairs:
            numbers["verb_object"] = Counter(f"{v} {o}".strip() for v, o in pairs).most_common(30)
            method = (
                "spaCy dependency parse (ROOT verb, head noun of its dobj)"
                if nlp
                else (
                    "approximation for imperative instructions (first word, head noun of the phrase after it); "
                    "install spaCy with an English model for a dependency parse"
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
        labeller = coverage.get("labeller") or "the rows' own 'skill' column"
        sections.append(
            (
                "Skill coverage",
                f"skills labelled by {labeller}; missing: {missing}",
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
                    counted=False,
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
    if diversity:
        numbers["diversity"] = diversity
        cells = "".join(
            f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
            for k, v in diversity.items()
        )
        body = f'<section><h2>Diversity</h2><table class="diversity">{cells}</table></section>\n' + body
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
