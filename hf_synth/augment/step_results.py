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
from ..rows import journaled


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


def bind_teacher(
    checkpointer: Checkpointer | None,
    checkpoint_dir: str | Path | None,
    engine,
    fingerprint,
    *,
    overwrite: bool = False,
):
    """:func:`bind_step` for a step with one engine: its checkpointer, the engine loaded (the teacher its
    summary names) and that engine journaled under the checkpointer (what the step generates with)."""
    checkpointer, (teacher,) = bind_step(
        checkpointer, checkpoint_dir, [engine], fingerprint, overwrite=overwrite
    )
    return checkpointer, teacher, journaled(teacher, checkpointer)


def _config(engine, section: str | None, config: dict[str, Any] | None) -> dict[str, Any] | None:
    data: dict[str, Any] = {}
    engine_config = engine_section(engine)
    if engine_config is not None:
        data["engine"] = engine_config
    if section is not None:
        data[section] = config
    return data or None


def _column(dataset, name: str) -> list | None:
    """The input's ``name`` column (the reference of the ROUGE-L shares), None when it has none."""
    return dataset[name] if name in dataset.column_names else None


#: ``source`` of a step that has no input dataset (the card then has no "Input:" step).
_NO_INPUT = object()


def _teacher_result(
    parts: tuple,
    summary: dict[str, Any],
    engine_for_config,
    settings: dict[str, Any],
    *,
    method: str,
    steps: list[str],
    tags: list[str] | None = None,
    section: str | None = None,
    source: Any = _NO_INPUT,
    **card: Any,
) -> StepResult:
    """The result of an augment step that generated with a teacher: ``parts[0]`` the rows it kept and, for
    a step over an input dataset (``source`` given, None for a Dataset given as is), ``parts[1]`` the rows
    it dropped; the card's first step then names the input and its ``summary["rows"]``. config.yaml holds
    the engine section of ``engine_for_config`` and, under ``section``, ``settings``; the card lists the
    summary's engines and ``settings``; its tags are ``[method]`` unless ``tags`` says. ``card``: the rest of
    :class:`StepResult`'s arguments."""
    if source is not _NO_INPUT:
        name = str(source) if source is not None else "a datasets.Dataset"
        steps = [f"Input: `{name}` ({summary['rows']} rows).", *steps]
        card |= {"rejected": parts[1], "input_source": source}
    return StepResult(
        parts,
        dataset=parts[0],
        summary=summary,
        config=_config(engine_for_config, section, settings if section is not None else None),
        method=method,
        tags=tags or [method],
        steps=steps,
        engines=summary["engines"],
        settings=settings,
        **card,
    )


def paraphrase_result(kept, rejected, *, dataset, engine, judge, config, source, engine_for_config):
    summary = {
        "rows": len(dataset),
        "paraphrases": len(kept) + len(rejected),
        "kept": len(kept),
        "rejected": len(rejected),
        "engine": engine.stats.to_dict(),
        "engines": describe_engines([engine, judge or engine]),
    }
    return _teacher_result(
        (kept, rejected),
        summary,
        engine_for_config,
        to_dict(config),
        method="paraphrase",
        steps=[
            f"The teacher wrote {config.k} rewordings of each row's `{config.target}`; rewordings that "
            f"were empty, refusals, or at least {config.max_rouge_l} ROUGE-L similar to the original were "
            "rejected" + (", and a judge checked that each still asks for the same task." if judge else "."),
        ],
        diversity=True,
        diversity_seeds=_column(dataset, "instruction"),
        section="paraphrase",
        source=source,
    )


def negatives_result(pairs, rejected, *, rows: int, engine, config, source, engine_for_config):
    summary = {
        "rows": rows,
        "pairs": len(pairs),
        "rejected": len(rejected),
        "kinds": dict(sorted(Counter(pairs["negative_kind"]).items())),
        "engines": describe_engines([engine]),
    }
    steps = [
        "Each row's output is `chosen`; `rejected` is a deliberately flawed answer written by the teacher "
        f"(flaw kinds: {', '.join(config.kinds)}; the kind is in `negative_kind`). Pairs whose flawed "
        "answer was empty or the same as the chosen one were dropped.",
    ]
    return _teacher_result(
        (pairs, rejected),
        summary,
        engine_for_config,
        to_dict(config),
        method="negatives",
        tags=["preference", "dpo"],
        steps=steps,
        diversity=True,  # of the pairs' prompts (the input's tasks: no ROUGE-L against them)
        diversity_column="prompt",
        section="negatives",
        source=source,
    )


def backtranslate_result(
    kept, rejected, *, dataset, engine, pivot, min_similarity, max_similarity, source, engine_for_config
):
    reasons = Counter(r for row in rejected["filter_reasons"] for r in row)
    engines = describe_engines([engine])
    summary = {"rows": len(dataset), "kept": len(kept), "rejected": dict(reasons), "engines": engines}
    return _teacher_result(
        (kept, rejected),
        summary,
        engine_for_config,
        {"pivot": pivot, "min_similarity": min_similarity, "max_similarity": max_similarity},
        method="back-translation",
        steps=[
            f"Each instruction was translated into {pivot} and back; rewordings with a similarity to the "
            f"original outside [{min_similarity}, {max_similarity}] were rejected.",
        ],
        diversity=True,
        diversity_seeds=_column(dataset, "instruction"),
        source=source,
    )


def slots_result(rows, *, template, values, engine, num, count, seed, engine_for_config):
    engines = describe_engines([engine])
    summary = {"template": template, "slot_values": values, "rows": len(rows), "engines": engines}
    slot_values = "; ".join(f"[{slot}]: {', '.join(v)}" for slot, v in values.items())
    settings = {"num": num, "count": count, "seed": seed}
    return _teacher_result(
        (rows, values),
        summary,
        engine_for_config,
        settings,
        method="template slots",
        tags=["template"],
        steps=[
            f"Template `{template}`; slot values given or proposed by the teacher: {slot_values}.",
            "Distinct combinations were filled in and answered by the teacher.",
        ],
        diversity=True,
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
