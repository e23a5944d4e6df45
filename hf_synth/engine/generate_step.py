"""``hf-synth generate`` as a step: one completion per row, data-parallel under ``accelerate launch``
(:mod:`hf_synth.engine.distributed`), journaled, with a result that saves itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .distributed import generate_distributed, process_state
from .engine_config import SamplingParams

if TYPE_CHECKING:
    from datasets import Dataset


def generate_step(
    dataset: Dataset,
    engine,
    sampling: SamplingParams,
    *,
    prompt_column: str = "prompt",
    output_column: str = "output",
    checkpoint_dir=None,
    overwrite: bool = False,
    source: str | None = None,
):
    """``hf-synth generate`` as a step: one completion per row of ``prompt_column``, data-parallel under
    ``accelerate launch``, every completion journaled under ``checkpoint_dir`` as it finishes (one journal
    per process when data-parallel), so a rerun of an interrupted run generates only what is missing.

    ``engine``: an engine or an :class:`~hf_synth.engine.EngineConfig` (loaded once the checkpoint folder
    is known to fit). Returns a :class:`~hf_synth.results.StepResult` on the main process (it unpacks as
    the completed dataset alone), None on the others."""
    import time
    from pathlib import Path

    from ..checkpoint import Checkpointer, bind_and_load
    from ..results import StepResult, engine_section
    from ..rows import fingerprint_rows

    state = process_state()
    rows = fingerprint_rows(dataset)

    def fingerprint(ids: list[str]) -> dict:
        return {
            "model": ids[0],
            "sampling": sampling.to_dict(),
            "prompt_column": prompt_column,
            "processes": state.num_processes,  # each process journals its own shard
            "input": rows,
        }

    engine_config = engine_section(engine)
    root = Path(checkpoint_dir) if checkpoint_dir is not None else None
    # only the main process binds (an overwrite empties the folder before any process journals in it)
    main = Checkpointer(root if state.is_main_process else None)
    (engine,) = bind_and_load(main, [engine], fingerprint, overwrite=overwrite)
    state.wait_for_everyone()
    journal = Checkpointer(
        None if root is None else root if state.num_processes == 1 else root / f"rank-{state.process_index}"
    )
    engine = journal.engine(engine)
    started = time.perf_counter()
    try:
        result = generate_distributed(
            dataset, engine, sampling, prompt_column=prompt_column, output_column=output_column
        )
    finally:
        journal.close()
    if result is None:  # not the main process: the main process writes everything
        return None
    summary = {
        "rows": len(result),
        "processes": state.num_processes,
        "reused_completions": getattr(engine, "reused", 0),
        "completion_tokens": int(sum(result["completion_tokens"])),
        "seconds": round(time.perf_counter() - started, 2),
        "model": engine.model_id,
        "backend": engine.backend,
        "engines": [engine.describe()],
        "sampling": sampling.to_dict(),
    }
    source_text = source if source is not None else "a datasets.Dataset"
    return StepResult(
        (result,),
        dataset=result,
        summary=summary,
        config={"engine": engine_config} if engine_config is not None else None,
        # the figures of what the rows ask (the prompts), as every other run's are of its instructions
        diversity=True,
        diversity_column=prompt_column,
        method="generate",
        tags=["generated"],
        steps=[
            f"Input: `{source_text}` ({len(result)} rows); one completion per row of `{prompt_column}` "
            f"into `{output_column}`, over {state.num_processes} process(es)."
        ],
        input_source=source,
        engines=summary["engines"],
        settings=summary["sampling"],
    )
