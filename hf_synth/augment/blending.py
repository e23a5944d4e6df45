"""Blend several datasets into one mix with target ratios or counts per source."""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from typing import Any

from datasets import Dataset, concatenate_datasets

from ..filters.heuristics import normalized_words
from ..results import StepResult
from ..rows import add_messages
from .step_results import blend_result

logger = logging.getLogger(__name__)

#: The columns every blended row has (missing ones are filled: input "", messages from instruction+output).
BLEND_COLUMNS = ("id", "instruction", "input", "output", "messages", "source", "source_row")


def _align(name: str, dataset: Dataset, instruction_column: str, output_column: str) -> Dataset:
    for column in (instruction_column, output_column):
        if column not in dataset.column_names:
            raise ValueError(
                f"Source {name!r} has no {column!r} column (columns: {', '.join(dataset.column_names)}); "
                "rename it or pass instruction_column=/output_column=."
            )

    def _row(row: dict[str, Any], index: int) -> dict[str, Any]:
        return {
            "id": f"{name}-{row.get('id', index)}",
            "instruction": row[instruction_column] or "",
            "input": row.get("input") or "",
            "output": row[output_column] or "",
            "source": name,
            "source_row": index,
        }

    aligned = dataset.map(_row, with_indices=True, remove_columns=dataset.column_names, keep_in_memory=True)
    return add_messages(aligned).select_columns(list(BLEND_COLUMNS))


def blend(
    sources: Mapping[str, Dataset],
    *,
    ratios: Mapping[str, float] | None = None,
    counts: Mapping[str, int] | None = None,
    total: int | None = None,
    dedup: bool = True,
    seed: int = 0,
    instruction_column: str = "instruction",
    output_column: str = "output",
) -> StepResult:
    """Mix ``sources`` (name → dataset) into one dataset with a ``source`` column.

    Give ``counts`` per source, or ``ratios`` (normalised) with ``total`` rows (default: as many as the
    ratios allow), or neither (everything). Rows are drawn without replacement, deterministically from
    ``seed``; with ``dedup``, exact duplicates of an instruction+input (after lower-casing and dropping
    punctuation) are dropped across sources, keeping the first source's row. A source asked for more rows
    than it has gives all it has, with a warning. Returns a :class:`~hf_synth.results.StepResult` that
    unpacks as the mix and a per-source summary (``mixed, summary = blend(...)``) and saves itself.
    """
    asked_total = total
    if not sources:
        raise ValueError("blend needs at least one source")
    if ratios and counts:
        raise ValueError("Give ratios or counts, not both")
    aligned = {name: _align(name, ds, instruction_column, output_column) for name, ds in sources.items()}
    unknown = sorted(set(ratios or counts or {}) - set(aligned))
    if unknown:
        raise ValueError(f"Unknown source(s) {', '.join(unknown)}; sources are {', '.join(aligned)}")

    if dedup:
        seen: set[str] = set()
        for name, ds in aligned.items():
            keep = []
            for i, row in enumerate(ds):
                key = normalized_words(row["instruction"] + " " + row["input"])
                if key not in seen:
                    seen.add(key)
                    keep.append(i)
            if len(keep) < len(ds):
                logger.info("Dropped %d duplicate row(s) from %s", len(ds) - len(keep), name)
            aligned[name] = ds.select(keep)

    if counts:
        wanted = {name: int(counts.get(name, 0)) for name in aligned}
    elif ratios:
        weights = {name: float(ratios.get(name, 0.0)) for name in aligned}
        if any(w < 0 for w in weights.values()) or not sum(weights.values()):
            raise ValueError("ratios must be >= 0 with at least one > 0")
        norm = {name: w / sum(weights.values()) for name, w in weights.items()}
        if total is None:  # as many rows as the scarcest weighted source allows
            total = int(min(len(aligned[n]) / norm[n] for n in norm if norm[n] > 0))
        wanted = {name: round(total * share) for name, share in norm.items()}
    else:
        wanted = {name: len(ds) for name, ds in aligned.items()}

    parts, summary = [], []
    rng = random.Random(seed)
    for name, ds in aligned.items():
        take = min(wanted[name], len(ds))
        if wanted[name] > len(ds):
            logger.warning(
                "Source %s has %d rows, %d asked for; taking all of them", name, len(ds), wanted[name]
            )
        picked = sorted(rng.sample(range(len(ds)), take))
        parts.append(ds.select(picked))
        summary.append({"source": name, "available": len(ds), "asked": wanted[name], "selected": take})
    mixed = concatenate_datasets(parts).shuffle(seed=seed)
    for row in summary:
        row["share"] = round(row["selected"] / len(mixed), 4) if len(mixed) else 0.0
    return blend_result(mixed.flatten_indices(), summary, dedup=dedup, seed=seed, total=asked_total)
