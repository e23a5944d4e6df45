"""Dataset cards rendered from the Jinja templates in ``cards/`` with huggingface_hub's ``DatasetCard``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datasets import Dataset
from huggingface_hub import DatasetCard, DatasetCardData


def cards_dir() -> Path:
    """The card templates: packaged as ``hf_synth/_cards`` in wheels, ``cards/`` in a source checkout."""
    packaged = Path(__file__).parent / "_cards"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "cards"


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket for ``n`` rows."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")]
    return next((label for bound, label in bounds if n < bound), "1M<n<10M")


def self_instruct_card(
    dataset: Dataset,
    summary: dict[str, Any],
    *,
    model: str,
    prompt_templates: Sequence[str],
    generation_params: dict[str, Any],
    seeds: str,
    num_examples: int = 3,
    template: str = "dataset_card.md",
) -> DatasetCard:
    """The dataset card of a Self-Instruct run (valid YAML metadata + a body that explains the run)."""
    data = DatasetCardData(
        license="other",
        language=["en"],
        task_categories=["text-generation"],
        size_categories=[size_category(len(dataset))],
        tags=["synthetic", "self-instruct", "hf-synth"],
        pretty_name="hf-synth Self-Instruct dataset",
    )
    examples = [dataset[i] for i in range(min(num_examples, len(dataset)))]
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
    return DatasetCard.from_template(
        data,
        template_path=str(cards_dir() / template),
        pretty_name=data.pretty_name,
        method="Self-Instruct",
        model=model,
        steps=steps,
        prompt_templates=list(prompt_templates),
        generation_params=json.dumps(generation_params, indent=2),
        generated=summary.get("generated", 0),
        kept=len(dataset),
        rejected=summary.get("rejected", 0),
        dropped=sorted(summary.get("dropped", {}).items(), key=lambda kv: -kv[1]),
        examples=examples,
        model_size_note="small" if "135M" in model else "language-model",
    )
