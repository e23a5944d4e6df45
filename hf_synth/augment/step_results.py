"""What the augment steps return (:class:`~hf_synth.results.StepResult`: it unpacks as before, and saves
or pushes itself with its summary, config.yaml and card), and how a step binds its checkpoint folder."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from ..checkpoint import Checkpointer, bind_and_load
from ..configuration import to_dict
from ..engine.protocol import describe_engines
from ..results import StepResult, engine_section


def bind_step(
    checkpointer: Checkpointer | None,
    checkpoint_dir: str | Path | None,
    engines: list,
    fingerprint,
    *,
    overwrite: bool = False,
) -> tuple[Checkpointer | None, list]:
    """The step's checkpointer and its engines, loaded (an :class:`~hf_synth.engine.EngineConfig` is loaded
    once the folder is known to fit). With ``checkpoint_dir`` the folder is tied to ``fingerprint(model
    ids)``; a ``checkpointer`` given instead is used as it is (its caller bound it)."""
    if checkpoint_dir is not None:
        checkpointer = Checkpointer(checkpoint_dir)
        return checkpointer, bind_and_load(checkpointer, engines, fingerprint, overwrite=overwrite)
    return checkpointer, bind_and_load(Checkpointer(None), engines, fingerprint)


def _config(engine, section: str | None, config: dict[str, Any] | None) -> dict[str, Any] | None:
    data: dict[str, Any] = {}
    engine_config = engine_section(engine)
    if engine_config is not None:
        data["engine"] = engine_config
    if section is not None:
        data[section] = config
    return data or None


def _source(source: str | None) -> str:
    return str(source) if source is not None else "a datasets.Dataset"


def _column(dataset, name: str) -> list | None:
    """The input's ``name`` column (the reference of the ROUGE-L shares), None when it has none."""
    return dataset[name] if name in dataset.column_names else None


def paraphrase_result(kept, rejected, *, dataset, engine, judge, config, source, engine_for_config):
    rows = len(dataset)
    summary = {
        "rows": rows,
        "paraphrases": len(kept) + len(rejected),
        "kept": len(kept),
        "rejected": len(rejected),
        "engine": engine.stats.to_dict(),
        "engines": describe_engines([engine, judge or engine]),
    }
    settings = to_dict(config)
    return StepResult(
        (kept, rejected),
        dataset=kept,
        rejected=rejected,
        summary=summary,
        config=_config(engine_for_config, "paraphrase", settings),
        diversity=True,
        diversity_seeds=_column(dataset, "instruction"),
        method="paraphrase",
        tags=["paraphrase"],
        steps=[
            f"Input: `{_source(source)}` ({rows} rows).",
            f"The teacher wrote {config.k} rewordings of each row's `{config.target}`; rewordings that "
            f"were empty, refusals, or at least {config.max_rouge_l} ROUGE-L similar to the original were "
            "rejected" + (", and a judge checked that each still asks for the same task." if judge else "."),
        ],
        input_source=source,
        engines=summary["engines"],
        settings=settings,
    )


def negatives_result(pairs, rejected, *, rows: int, engine, config, source, engine_for_config):
    summary = {
        "rows": rows,
        "pairs": len(pairs),
        "rejected": len(rejected),
        "kinds": dict(sorted(Counter(pairs["negative_kind"]).items())),
        "engines": describe_engines([engine]),
    }
    settings = to_dict(config)
    return StepResult(
        (pairs, rejected),
        dataset=pairs,
        rejected=rejected,
        summary=summary,
        config=_config(engine_for_config, "negatives", settings),
        diversity=True,  # of the pairs' prompts (the input's tasks: no ROUGE-L against them)
        diversity_column="prompt",
        method="negatives",
        tags=["preference", "dpo"],
        steps=[
            f"Input: `{_source(source)}` ({rows} rows).",
            "Each row's output is `chosen`; `rejected` is a deliberately flawed answer written by the "
            f"teacher (flaw kinds: {', '.join(config.kinds)}; the kind is in `negative_kind`). Pairs "
            "whose flawed answer was empty or the same as the chosen one were dropped.",
        ],
        input_source=source,
        engines=summary["engines"],
        settings=settings,
    )


def backtranslate_result(
    kept, rejected, *, dataset, engine, pivot, min_similarity, max_similarity, source, engine_for_config
):
    rows = len(dataset)
    reasons = Counter(r for row in rejected["filter_reasons"] for r in row)
    engines = describe_engines([engine])
    summary = {"rows": rows, "kept": len(kept), "rejected": dict(reasons), "engines": engines}
    return StepResult(
        (kept, rejected),
        dataset=kept,
        rejected=rejected,
        summary=summary,
        config=_config(engine_for_config, None, None),
        diversity=True,
        diversity_seeds=_column(dataset, "instruction"),
        method="back-translation",
        tags=["back-translation"],
        steps=[
            f"Input: `{_source(source)}` ({rows} rows).",
            f"Each instruction was translated into {pivot} and back; rewordings with a similarity to the "
            f"original outside [{min_similarity}, {max_similarity}] were rejected.",
        ],
        input_source=source,
        engines=engines,
        settings={"pivot": pivot, "min_similarity": min_similarity, "max_similarity": max_similarity},
    )


def slots_result(rows, *, template, values, engine, num, count, seed, engine_for_config):
    engines = describe_engines([engine])
    summary = {"template": template, "slot_values": values, "rows": len(rows), "engines": engines}
    return StepResult(
        (rows, values),
        dataset=rows,
        summary=summary,
        config=_config(engine_for_config, None, None),
        diversity=True,
        method="template slots",
        tags=["template"],
        steps=[
            f"Template `{template}`; slot values given or proposed by the teacher: "
            + "; ".join(f"[{slot}]: {', '.join(v)}" for slot, v in values.items())
            + ".",
            "Distinct combinations were filled in and answered by the teacher.",
        ],
        engines=engines,
        settings={"num": num, "count": count, "seed": seed},
    )


def blend_result(mixed, summary_rows, *, dedup: bool, seed: int, total):
    return StepResult(
        (mixed, summary_rows),
        dataset=mixed,
        summary={"sources": summary_rows, "rows": len(mixed)},
        diversity=True,
        method="blend",
        tags=["blend"],
        steps=[
            "Rows drawn from several sources: "
            + "; ".join(f"`{row['source']}` {row['selected']} of {row['available']}" for row in summary_rows)
            + (". Exact duplicates across sources were removed." if dedup else "."),
        ],
        settings={"seed": seed, "total": total},
    )
