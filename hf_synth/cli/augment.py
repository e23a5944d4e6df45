"""The diversity subcommands: paraphrase, negatives, blend, slots, backtranslate."""

from __future__ import annotations

import argparse
import logging
from collections import Counter
from dataclasses import replace

from ..configuration import to_dict
from ..engine.protocol import describe_engines
from .common import (
    engine_config_from_args,
    engine_from_args,
    engine_only_config,
    load_engine,
    output_checkpointer,
    parse_pairs,
    print_rows,
    run_diversity,
    step_config,
    write_step_card,
)

logger = logging.getLogger("hf_synth")


def cmd_paraphrase(args: argparse.Namespace) -> int:
    from ..augment import ParaphraseConfig, paraphrase
    from ..io import load_seed_dataset, save_run
    from ..rows import fingerprint_rows

    config = step_config(args, ParaphraseConfig, "paraphrase")
    dataset = load_seed_dataset(args.input)
    engine = engine_from_args(args)
    checkpointer = output_checkpointer(
        args,
        {
            "config": to_dict(config),
            "model": engine.model_id,
            "check_task": args.check_task,
            "judge": args.judge_model,
            "input": fingerprint_rows(dataset),
        },
    )
    judge = None
    if args.check_task:
        judge = engine
        if args.judge_model and args.judge_model != engine.model_id:
            judge = load_engine(args, replace(engine_config_from_args(args), model=args.judge_model))
    kept, rejected = paraphrase(dataset, engine, config, checkpointer=checkpointer, judge=judge)
    summary = {
        "rows": len(dataset),
        "paraphrases": len(kept) + len(rejected),
        "kept": len(kept),
        "rejected": len(rejected),
        "engine": engine.stats.to_dict(),
        "engines": describe_engines([engine, judge or engine]),
        "diversity": run_diversity(kept, seeds=_column(dataset, "instruction")),
    }
    paths = save_run(args.output, kept, rejected, summary=summary, config={"paraphrase": to_dict(config)})
    write_step_card(
        args,
        kept,
        method="paraphrase",
        tags=["paraphrase"],
        steps=[
            f"Input: `{args.input}` ({len(dataset)} rows).",
            f"The teacher wrote {config.k} rewordings of each row's `{config.target}`; rewordings that were "
            f"empty, refusals, or at least {config.max_rouge_l} ROUGE-L similar to the original were rejected"
            + (", and a judge checked that each still asks for the same task." if judge else "."),
        ],
        rejected=rejected,
        engines=summary["engines"],
        settings=to_dict(config),
        diversity=summary["diversity"],
    )
    print(
        f"\nParaphrased {len(dataset)} rows: {len(kept)} kept, {len(rejected)} rejected -> {paths['dataset']}"
    )
    print_rows(kept.to_list(), 2)
    return 0


def cmd_negatives(args: argparse.Namespace) -> int:
    from ..augment import NegativeConfig, preference_pairs
    from ..io import load_seed_dataset, save_run
    from ..rows import fingerprint_rows

    config = step_config(args, NegativeConfig, "negatives")
    dataset = load_seed_dataset(args.input)
    engine = engine_from_args(args)
    checkpointer = output_checkpointer(
        args, {"config": to_dict(config), "model": engine.model_id, "input": fingerprint_rows(dataset)}
    )
    pairs, rejected = preference_pairs(dataset, engine, config, checkpointer=checkpointer)
    summary = {
        "rows": len(dataset),
        "pairs": len(pairs),
        "rejected": len(rejected),
        "kinds": dict(sorted(Counter(pairs["negative_kind"]).items())),
        "engines": describe_engines([engine]),
    }
    paths = save_run(args.output, pairs, rejected, summary=summary, config={"negatives": to_dict(config)})
    write_step_card(
        args,
        pairs,
        method="negatives",
        tags=["preference", "dpo"],
        steps=[
            f"Input: `{args.input}` ({len(dataset)} rows).",
            "Each row's output is `chosen`; `rejected` is a deliberately flawed answer written by the teacher "
            f"(flaw kinds: {', '.join(config.kinds)}; the kind is in `negative_kind`). Flawed answers equal "
            "Pairs whose flawed answer was empty or the same as the chosen one were dropped.",
        ],
        rejected=rejected,
        engines=summary["engines"],
        settings=to_dict(config),
    )
    print(f"\n{len(pairs)} preference pairs ({len(rejected)} rejected) -> {paths['dataset']}")
    print("  train with: python scripts/dpo.py --dataset " + str(args.output) + " --output_dir dpo-out")
    return 0


def cmd_blend(args: argparse.Namespace) -> int:
    from ..augment import blend
    from ..io import load_seed_dataset, save_run

    sources = {name: load_seed_dataset(path) for name, path in parse_pairs(args.source, "--source").items()}
    mixed, summary = blend(
        sources,
        ratios=parse_pairs(args.ratio, "--ratio", float) or None,
        counts=parse_pairs(args.count, "--count", int) or None,
        total=args.total,
        dedup=not args.no_dedup,
        seed=args.seed,
    )
    diversity = run_diversity(mixed)
    save_run(args.output, mixed, summary={"sources": summary, "rows": len(mixed), "diversity": diversity})
    write_step_card(
        args,
        mixed,
        method="blend",
        tags=["blend"],
        steps=[
            "Rows drawn from several sources: "
            + "; ".join(f"`{row['source']}` {row['selected']} of {row['available']}" for row in summary)
            + (". Exact duplicates across sources were removed." if not args.no_dedup else "."),
        ],
        settings={"seed": args.seed, "total": args.total},
        diversity=diversity,
    )
    print(f"\nBlended {len(mixed)} rows:")
    print("  source               available   asked  selected   share")
    for row in summary:
        print(
            f"  {row['source']:<20} {row['available']:9d} {row['asked']:7d} {row['selected']:9d}  {row['share']:6.1%}"
        )
    return 0


def cmd_slots(args: argparse.Namespace) -> int:
    from ..augment import fill_template, propose_slot_values, template_slots
    from ..io import save_run
    from ..rows import journaled

    slots = template_slots(args.template)
    given = {
        k: [v.strip() for v in vals.split("|") if v.strip()]
        for k, vals in parse_pairs(args.values, "--values").items()
    }
    unknown = sorted(set(given) - set(slots))
    if unknown or not slots:
        raise ValueError(
            f"Template slots are {', '.join(slots) or 'none'}; --values named {', '.join(unknown)}"
        )
    engine_only_config(args)
    engine = engine_from_args(args)
    checkpointer = output_checkpointer(
        args,
        {
            "template": args.template,
            "values": given,
            "count": args.count,
            "num": args.num,
            "seed": args.seed,
            "max_new_tokens": args.max_new_tokens,
            "model": engine.model_id,
        },
    )
    sampling = None
    if args.max_new_tokens is not None:
        from ..engine import SamplingParams

        sampling = SamplingParams(max_new_tokens=args.max_new_tokens, temperature=0.7, top_p=0.9)
    if set(slots) - set(given):  # proposals are journaled too: a re-run gets the same values back
        proposed = propose_slot_values(args.template, journaled(engine, checkpointer), count=args.count)
        given = {**proposed, **given}
    rows = fill_template(
        args.template,
        given,
        engine,
        num=args.num,
        seed=args.seed,
        answer_sampling=sampling,
        checkpointer=checkpointer,
    )
    checkpointer.close()
    diversity = run_diversity(rows)
    save_run(
        args.output,
        rows,
        summary={
            "template": args.template,
            "slot_values": given,
            "rows": len(rows),
            "engines": describe_engines([engine]),
            "diversity": diversity,
        },
    )
    write_step_card(
        args,
        rows,
        method="template slots",
        tags=["template"],
        steps=[
            f"Template `{args.template}`; slot values given or proposed by the teacher: "
            + "; ".join(f"[{slot}]: {', '.join(values)}" for slot, values in given.items())
            + ".",
            "Distinct combinations were filled in and answered by the teacher.",
        ],
        engines=describe_engines([engine]),
        settings={"num": args.num, "count": args.count, "seed": args.seed},
        diversity=diversity,
    )
    print(f"\n{len(rows)} instructions from the template; slot values:")
    for slot, values in given.items():
        print(f"  [{slot}]: {', '.join(values)}")
    print_rows(rows.to_list(), 2)
    return 0


def cmd_backtranslate(args: argparse.Namespace) -> int:
    from ..augment import back_translate
    from ..engine import SamplingParams
    from ..io import load_seed_dataset, save_run
    from ..rows import fingerprint_rows

    engine_only_config(args)
    dataset = load_seed_dataset(args.input)
    engine = engine_from_args(args)
    checkpointer = output_checkpointer(
        args,
        {
            "max_new_tokens": args.max_new_tokens,
            "pivot": args.pivot,
            "model": engine.model_id,
            "to_pivot_model": args.to_pivot_model,
            "from_pivot_model": args.from_pivot_model,
            "input": fingerprint_rows(dataset),
        },
    )
    kept, rejected = back_translate(
        dataset,
        engine,
        pivot=args.pivot,
        min_similarity=args.min_similarity,
        max_similarity=args.max_similarity,
        checkpointer=checkpointer,
        to_pivot_model=args.to_pivot_model,
        from_pivot_model=args.from_pivot_model,
        sampling=None
        if args.max_new_tokens is None
        else SamplingParams(max_new_tokens=args.max_new_tokens, temperature=0.3, top_p=0.95),
    )
    reasons = Counter(r for row in rejected["filter_reasons"] for r in row)
    diversity = run_diversity(kept, seeds=_column(dataset, "instruction"))
    save_run(
        args.output,
        kept,
        rejected,
        summary={
            "rows": len(dataset),
            "kept": len(kept),
            "rejected": dict(reasons),
            "engines": describe_engines([engine]),
            "diversity": diversity,
        },
    )
    write_step_card(
        args,
        kept,
        method="back-translation",
        tags=["back-translation"],
        steps=[
            f"Input: `{args.input}` ({len(dataset)} rows).",
            f"Each instruction was translated into {args.pivot} and back; rewordings with a similarity to the "
            f"original outside [{args.min_similarity}, {args.max_similarity}] were rejected.",
        ],
        rejected=rejected,
        engines=describe_engines([engine]),
        settings={
            "pivot": args.pivot,
            "min_similarity": args.min_similarity,
            "max_similarity": args.max_similarity,
        },
        diversity=diversity,
    )
    print(
        f"\nBack-translated {len(dataset)} instructions via {args.pivot}: {len(kept)} kept; rejected: {dict(reasons)}"
    )
    return 0


def _column(dataset, name: str) -> list | None:
    """The input's ``name`` column (the reference of the ROUGE-L shares), None when it has none."""
    return dataset[name] if name in dataset.column_names else None
