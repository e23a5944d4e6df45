"""``hf-synth filter`` as a step: the filters of a spec list over any dataset, the kept and dropped rows,
with a result that saves itself (:class:`~hf_synth.results.StepResult`)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

from ..checkpoint import Checkpointer
from ..results import StepResult
from ..rows import fingerprint_rows
from .dataset_filters import reason_key, split_filtered
from .decontaminate import contamination_counts
from .registry import resolve_filters, run_filters

logger = logging.getLogger(__name__)


def filter_dataset(
    dataset,
    filters: list[dict[str, Any]],
    *,
    checkpoint_dir: str | Path | None = None,
    overwrite: bool = False,
    source: str | None = None,
) -> StepResult:
    """Run ``filters`` (the specs of a ``filters:`` list, in order) over ``dataset`` and split the rows
    into kept and dropped (any reason drops a row). Finished chunks are kept under ``checkpoint_dir``,
    tied to the specs and the input (``overwrite`` discards another run's). A dataset with no rows is
    filtered like any other: its empty result is saved, with a warning, and pushing it needs
    ``allow_empty`` (one rule for every step). Returns a :class:`~hf_synth.results.StepResult` that unpacks
    as ``(kept, dropped)``; ``source`` names the input for the card."""
    resolve_filters(filters)  # bad specs fail before anything is loaded
    started = time.perf_counter()
    if len(dataset):
        checkpointer = Checkpointer(checkpoint_dir)
        checkpointer.bind({"filters": filters, "input": fingerprint_rows(dataset)}, overwrite=overwrite)
        scored = run_filters(dataset, filters, checkpointer=checkpointer)
        kept, dropped = split_filtered(scored)
        reasons: Counter = Counter(reason_key(r) for row in dropped["filter_reasons"] for r in row)
    else:
        logger.info("%s holds no rows: no filter ran", source if source is not None else "The dataset")
        kept, dropped, reasons = dataset, dataset, Counter()
    summary: dict[str, Any] = {
        "input": str(source) if source is not None else None,
        "rows": len(dataset),
        "kept": len(kept),
        "dropped": len(dropped),
        "reasons": dict(reasons.most_common()),
        "seconds": round(time.perf_counter() - started, 2),
        "filters": filters,
    }
    if any(spec["name"] == "decontaminate" for spec in filters):
        # rows dropped per evaluation set (a row matching two sets counts in both)
        summary["decontamination"] = contamination_counts(summary["reasons"])
    shown = source if source is not None else "a datasets.Dataset"
    steps = [
        f"Input: `{shown}` ({len(dataset)} rows).",
        "Filters, in order (each adds scores and reasons and drops nothing; rows with any reason were "
        "dropped at the end): " + ", ".join(f"`{spec['name']}`" for spec in filters) + ".",
    ]
    if "decontamination" in summary:
        steps.append(
            "Decontamination (rows sharing a long n-gram or a near-duplicate embedding with an "
            "evaluation set were dropped), rows dropped per set: "
            + (", ".join(f"`{k}` {v}" for k, v in summary["decontamination"].items()) or "none")
            + "."
        )
    return StepResult(
        (kept, dropped),
        dataset=kept,
        rejected=dropped,
        summary=summary,
        config={"filters": filters},
        method="filter",
        tags=["filtered"],
        steps=steps,
        input_source=source,
        settings={
            f"{i}.{spec['name']}.{key}": value
            for i, spec in enumerate(filters, start=1)
            for key, value in spec.items()
            if key != "name"
        },
        diversity=True,
    )
