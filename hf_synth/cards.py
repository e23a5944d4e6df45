"""Dataset cards rendered from the Jinja templates in ``cards/`` with huggingface_hub's ``DatasetCard``."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datasets import Dataset
from huggingface_hub import DatasetCard, DatasetCardData

_COMMON_COLUMNS = [
    ("instruction, input, output", "the task, its optional input and the model's output"),
    ("messages", "the same as a conversation (user, assistant) in TRL's format"),
    ("model, prompt_templates, generation_params", "the model, prompt templates and sampling parameters"),
]


_TEXT_COLUMNS = ("instruction", "input", "output", "prompt", "chosen", "rejected")

#: Every tag hf-synth's cards carry (``build_card``'s own and each step's). A push replaces these in the
#: repo's card with the new card's, so a tag of an earlier push's method does not linger; any other tag is
#: the owner's and is kept. A step with a new tag adds it here (tests/test_push_roundtrip.py checks).
GENERATED_TAGS = frozenset(
    {
        "synthetic",
        "hf-synth",
        "self-instruct",
        "evol-instruct",
        "human-reviewed",
        "filtered",
        "paraphrase",
        "preference",
        "dpo",
        "blend",
        "template",
        "back-translation",
        "generated",
        "refine",
    }
)


def _is_text(dataset: Dataset, column: str) -> bool:
    feature = dataset.features.get(column)
    return getattr(feature, "dtype", None) in ("string", "large_string")


def cards_dir() -> Path:
    """The card templates: packaged as ``hf_synth/_cards`` in wheels, ``cards/`` in a source checkout."""
    packaged = Path(__file__).parent / "_cards"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "cards"


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket for ``n`` rows."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")]
    return next((label for bound, label in bounds if n < bound), "1M<n<10M")


def length_stats(dataset: Dataset, columns: Sequence[str] = ("instruction", "input", "output")) -> list:
    """Word-length statistics (mean, median, 90th percentile, max) of the text columns present."""
    import numpy as np

    from .filters.heuristics import word_count

    stats = []
    for column in columns:
        if column not in dataset.column_names or len(dataset) == 0:
            continue
        words = np.array([word_count(t or "") for t in dataset[column]])
        stats.append(
            (
                column,
                {
                    "mean": round(float(words.mean()), 1),
                    "median": int(np.median(words)),
                    "p90": int(np.percentile(words, 90)),
                    "max": int(words.max()),
                },
            )
        )
    return stats


def render_card(data: DatasetCardData, template: str = "dataset_card.md", **context: Any) -> DatasetCard:
    """Render a card template of ``cards/`` with block tags trimmed (a ``{% for %}`` line leaves no blank
    line behind, so table rows stay one table) and ``data`` as its YAML header."""
    import jinja2

    env = jinja2.Environment(
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined
    )
    text = (cards_dir() / template).read_text(encoding="utf-8")
    return DatasetCard(env.from_string(text).render(card_data=data.to_yaml(), **context))


_SECTION = re.compile(r"^## How it was made\n(.*?)(?=^## |\Z)", re.S | re.M)


def input_history(source: str | Path | None) -> str | None:
    """The "How it was made" section of the card of an hf-synth run folder ``source`` (the input of a
    later step), so a derived dataset's card tells the whole story; None for other inputs."""
    from .run_folder import RunFolder

    card = RunFolder(source).read_card() if source else None
    if card is None:
        return None
    match = _SECTION.search(card.text)
    if not match:
        return None
    return re.sub(r"^(#+) ", r"#\1 ", match.group(1).strip(), flags=re.M)  # one heading level down


def build_card(
    dataset: Dataset,
    *,
    method: str,
    tags: Sequence[str],
    steps: Sequence[str],
    model: str | None = None,
    columns: Sequence[tuple[str, str]] = (),
    prompt_templates: Sequence[str] = (),
    generation_params: dict[str, Any] | None = None,
    generated: int | None = None,
    rejected: int = 0,
    dropped: dict[str, int] | None = None,
    coverage: dict[str, Any] | None = None,
    source_datasets: Sequence[str] = (),
    engines: Sequence[dict[str, Any]] = (),
    history: str | None = None,
    settings: dict[str, Any] | None = None,
    review: dict[str, Any] | None = None,
    diversity: dict[str, Any] | None = None,
    num_examples: int = 3,
    template: str = "dataset_card.md",
) -> DatasetCard:
    """A dataset card with valid YAML metadata and a body that explains how the rows were made.

    ``coverage`` is a :func:`~hf_synth.curation.coverage_report`; ``source_datasets`` are Hub ids the data
    was made from (seeds, inputs); ``engines`` are the :meth:`~hf_synth.engine.Engine.describe` records of
    the engines that generated the rows (model, backend, dtype, device); ``model`` is None for steps that
    generate nothing (filters, blends). ``history`` is the input's own "How it was made" (see
    :func:`input_history`); ``settings`` the step's thresholds and options, shown as a table; ``review``
    the figures of a human review (:func:`~hf_synth.review.review_figures`); ``diversity`` the figures of
    :func:`~hf_synth.curation.diversity.dataset_diversity`."""
    data = DatasetCardData(
        license="other",
        language=["en"],
        task_categories=["text-generation"],
        size_categories=[size_category(len(dataset))],
        tags=["synthetic", *tags, "hf-synth"],
        pretty_name=f"hf-synth {method} dataset",
        source_datasets=list(source_datasets) or None,
    )
    columns = [*(_COMMON_COLUMNS if "instruction" in dataset.column_names else ()), *columns]
    shown = [c for c in _TEXT_COLUMNS if _is_text(dataset, c)]
    examples = [
        [(c, dataset[i][c]) for c in shown if dataset[i][c]] for i in range(min(num_examples, len(dataset)))
    ]
    return render_card(
        data,
        template,
        pretty_name=data.pretty_name,
        method=method,
        model=model,
        steps=list(steps),
        columns=columns,
        prompt_templates=list(prompt_templates),
        generation_params=json.dumps(generation_params, indent=2) if generation_params else None,
        generated=len(dataset) + rejected if generated is None else generated,
        kept=len(dataset),
        rejected=rejected,
        dropped=sorted((dropped or {}).items(), key=lambda kv: -kv[1]),
        examples=examples,
        length_stats=length_stats(dataset, [c for c in _TEXT_COLUMNS if _is_text(dataset, c)]),
        coverage=sorted(coverage["skills"].items(), key=lambda kv: -kv[1]["count"]) if coverage else None,
        coverage_labeller=(coverage or {}).get("labeller") or "the rows' own 'skill' column",
        model_size_note="small" if model and "135M" in model else "language-model",
        engines=list(engines),
        history=history,
        settings=sorted((settings or {}).items()),
        review=review,
        diversity=_diversity_rows(diversity),
        diversity_reference=(diversity or {}).get("rouge_l_reference"),
    )


def _diversity_rows(diversity: dict[str, Any] | None) -> list[tuple[str, Any]] | None:
    if not diversity:
        return None
    from .curation.diversity import DIVERSITY_FIELDS

    return [(k, diversity[k]) for k in DIVERSITY_FIELDS if diversity.get(k) is not None]


def step_card(
    dataset: Dataset,
    *,
    method: str,
    tags: Sequence[str],
    steps: Sequence[str],
    input_source: str | Path | None = None,
    **kwargs: Any,
) -> DatasetCard:
    """The card of a step applied to an existing dataset (filter, paraphrase, negatives, blend, slots,
    back-translation, generate): its own steps, with the input run's history when the input is a run."""
    return build_card(
        dataset, method=method, tags=tags, steps=steps, history=input_history(input_source), **kwargs
    )


def self_instruct_card(
    dataset: Dataset,
    summary: dict[str, Any],
    *,
    model: str,
    prompt_templates: Sequence[str],
    generation_params: dict[str, Any],
    seeds: str,
    coverage: dict[str, Any] | None = None,
    source_datasets: Sequence[str] = (),
) -> DatasetCard:
    """The dataset card of a Self-Instruct run."""
    steps = [
        f"Seed pool: `{seeds}`.",
        "Few-shot prompts mixing human seeds with earlier machine instructions asked the teacher for new "
        "instructions; numbered-list replies were parsed.",
        "Instructions were filtered: start character, word length, blocked keywords (tasks a text model "
        "cannot do), and ROUGE-L novelty against the pool.",
        "Each task was classified (classification tasks are generated output-first, others input-first) and "
        "one input/output instance was generated.",
        "Instances were filtered: malformed replies, empty or copied outputs, refusals.",
        f"Survivors joined the pool for the next round ({summary.get('rounds', '?')} rounds).",
    ]
    columns = [
        ("source, round", "how and in which Self-Instruct round the row was made"),
        (
            "parent_ids",
            "ids of the few-shot instructions shown to the teacher when it wrote this instruction",
        ),
        ("demonstration_id", "the seed shown as format example when the instance was generated"),
        ("scores", "rouge_l_max against the pool at the time, and the id of the nearest text"),
    ]
    return build_card(
        dataset,
        method="Self-Instruct",
        tags=["self-instruct"],
        model=model,
        steps=steps,
        columns=columns,
        prompt_templates=prompt_templates,
        generation_params=generation_params,
        generated=summary.get("generated", 0) + summary.get("requests_unparsable", 0),
        rejected=summary.get("rejected", 0),
        dropped=summary.get("dropped", {}),
        coverage=coverage,
        source_datasets=source_datasets,
        engines=summary.get("engines", ()),
        diversity=summary.get("diversity"),
    )


def evol_instruct_card(
    dataset: Dataset,
    summary: dict[str, Any],
    *,
    model: str,
    judge_model: str,
    response_model: str,
    prompt_templates: Sequence[str],
    generation_params: dict[str, Any],
    source: str,
    coverage: dict[str, Any] | None = None,
    source_datasets: Sequence[str] = (),
) -> DatasetCard:
    """The dataset card of an Evol-Instruct run."""
    steps = [
        f"Input instructions: `{source}`.",
        "Each instruction was rewritten by one operation drawn per row: deepening, concretizing, reasoning "
        "augmentation, added constraints (in-depth) or breadth expansion (a new, rarer instruction).",
        "Failed evolutions were eliminated by rules: empty, too short or stop words only, refusals, copied "
        "prompt scaffolding, no new information over the parent (ROUGE-L)"
        + (
            f", and by the verdict of the judge `{judge_model}` (coherent, solvable, more complex)."
            if judge_model and summary.get("judge_enforced", True)
            else (
                f". The judge `{judge_model}` failed its self-check, so its verdicts were recorded but "
                "eliminated nothing."
                if judge_model
                else ". No judge was used."
            )
        ),
        f"Survivors were answered by `{response_model}`; empty answers and refusals were eliminated.",
        f"Survivors became the parents of the next round ({summary.get('rounds', '?')} rounds); an eliminated "
        "evolution's parent was retried.",
    ]
    columns = [
        ("parent_id, root_id, round", "lineage: the row this one was evolved from, the original, the round"),
        ("evolution_op", "the operation that produced the row"),
        ("judge", "the judge's verdict (coherent, solvable, more_complex, score, parsed)"),
        ("scores", "words, clauses and constraint cues of the row and of its parent, ROUGE-L to the parent"),
    ]
    return build_card(
        dataset,
        method="Evol-Instruct",
        tags=["evol-instruct"],
        model=model,
        steps=steps,
        columns=columns,
        prompt_templates=prompt_templates,
        generation_params=generation_params,
        generated=summary.get("evolved", 0),
        rejected=summary.get("eliminated", 0),
        dropped=summary.get("reasons", {}),
        coverage=coverage,
        source_datasets=source_datasets,
        engines=summary.get("engines", ()),
        diversity=summary.get("diversity"),
    )
