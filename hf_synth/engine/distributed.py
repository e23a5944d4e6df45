"""Data-parallel generation across processes started by ``accelerate launch`` (or ``torchrun``).

Each process loads its own engine, takes its shard of the dataset with
``datasets.distributed.split_dataset_by_node`` and generates it; the completions are gathered on the main
process and put back in the original row order. A missing or duplicated row is an error, never a silent
loss. Run once per machine/GPU: ``accelerate launch --num_processes N -m hf_synth.cli generate ...``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .engine_config import SamplingParams

if TYPE_CHECKING:  # datasets is imported only when generate_distributed runs: loading an engine needs
    from datasets import Dataset  # nothing beyond torch, transformers and accelerate

logger = logging.getLogger(__name__)

ROW = "__hf_synth_row"


def process_state():
    """accelerate's ``PartialState`` for this process.

    Without a GPU it is created with ``cpu=True``, so that processes started by ``accelerate launch
    --multi_gpu --num_processes N`` (or ``torchrun``) on a CPU-only machine join one gloo process group
    instead of each running alone.
    """
    import torch
    from accelerate import PartialState

    has_accelerator = torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available())
    return PartialState(cpu=not has_accelerator)


def gather_rows(local: list[dict[str, Any]], n_rows: int, gather) -> list[dict[str, Any]]:
    """Gather every process's rows (each carrying ``ROW``) and return them in row order, all present once."""
    everything = gather(local)
    seen: dict[int, dict[str, Any]] = {}
    duplicates = []
    for row in everything:
        if row[ROW] in seen:
            duplicates.append(row[ROW])
        seen[row[ROW]] = row
    missing = sorted(set(range(n_rows)) - set(seen))
    if duplicates or missing:
        raise RuntimeError(
            f"Distributed generation lost or repeated rows (missing {missing[:10]}, duplicated "
            f"{sorted(duplicates)[:10]}); every process must run the same command on the same dataset"
        )
    return [seen[i] for i in range(n_rows)]


def generate_distributed(
    dataset: Dataset,
    engine,
    sampling: SamplingParams | None = None,
    *,
    prompt_column: str = "prompt",
    output_column: str = "output",
    progress: bool = True,
) -> Dataset | None:
    """Generate one completion per row of ``dataset`` with this process's shard; gather on the main process.

    Adds ``output_column``, ``completion_tokens`` and ``finish_reason``. Returns the full dataset on the main
    process and ``None`` on the others. In a single process it simply generates everything.
    """
    from accelerate.utils import gather_object
    from datasets.distributed import split_dataset_by_node

    if prompt_column not in dataset.column_names:
        raise ValueError(
            f"Column {prompt_column!r} not in the dataset (columns: {dataset.column_names}); pass --prompt-column"
        )
    state = process_state()
    indexed = dataset.add_column(ROW, list(range(len(dataset))))
    shard = split_dataset_by_node(indexed, rank=state.process_index, world_size=state.num_processes)
    prompts: Sequence = list(shard[prompt_column])
    logger.info(
        "Process %d/%d generates %d of %d rows",
        state.process_index,
        state.num_processes,
        len(prompts),
        len(dataset),
    )
    outputs = (
        engine.generate(prompts, sampling, desc=f"Generating (rank {state.process_index})", progress=progress)
        if prompts
        else []
    )
    local = [
        {
            ROW: row,
            "text": out.text,
            "completion_tokens": out.completion_tokens,
            "finish_reason": out.finish_reason,
        }
        for row, out in zip(shard[ROW], outputs, strict=True)
    ]
    gather = gather_object if state.num_processes > 1 else (lambda rows: rows)
    rows = gather_rows(local, len(dataset), gather)
    state.wait_for_everyone()
    if not state.is_main_process:
        return None
    result = dataset
    for name in (output_column, "completion_tokens", "finish_reason"):
        if name in result.column_names:
            result = result.remove_columns(name)
    result = result.add_column(output_column, [r["text"] for r in rows])
    result = result.add_column("completion_tokens", [r["completion_tokens"] for r in rows])
    return result.add_column("finish_reason", [r["finish_reason"] for r in rows])
