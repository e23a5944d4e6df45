"""The diversity subcommands: paraphrase, negatives, blend, slots, backtranslate. Each parses its flags and
--config, runs the step (which binds its checkpoints), saves the result and prints its summary."""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace

from .common import checkpoint_args, parse_config, parse_pairs, print_rows

logger = logging.getLogger("hf_synth")


def _sampling(args: argparse.Namespace, temperature: float, top_p: float):
    """--max-new-tokens as the step's sampling (None: the step's own default)."""
    if args.max_new_tokens is None:
        return None
    from ..engine import SamplingParams

    return SamplingParams(max_new_tokens=args.max_new_tokens, temperature=temperature, top_p=top_p)


def cmd_paraphrase(args: argparse.Namespace) -> int:
    from ..augment import ParaphraseConfig, paraphrase
    from ..io import load_seed_dataset

    engine_config, config = parse_config(args, "paraphrase", ParaphraseConfig, sampling=("sampling",))
    dataset = load_seed_dataset(args.input)
    judge = None
    if args.check_task:
        judge = replace(engine_config, model=args.judge_model) if args.judge_model else engine_config
    result = paraphrase(
        dataset, engine_config, config, judge=judge, source=args.input, **checkpoint_args(args)
    )
    paths = result.save(args.output)
    kept, rejected = result
    print(
        f"\nParaphrased {len(dataset)} rows: {len(kept)} kept, {len(rejected)} rejected -> {paths['dataset']}"
    )
    print_rows(kept.to_list(), 2)
    return 0


def cmd_negatives(args: argparse.Namespace) -> int:
    from ..augment import NegativeConfig, preference_pairs
    from ..io import load_seed_dataset

    engine_config, config = parse_config(args, "negatives", NegativeConfig, sampling=("sampling",))
    dataset = load_seed_dataset(args.input)
    result = preference_pairs(dataset, engine_config, config, source=args.input, **checkpoint_args(args))
    paths = result.save(args.output)
    pairs, rejected = result
    print(f"\n{len(pairs)} preference pairs ({len(rejected)} rejected) -> {paths['dataset']}")
    print("  train with: python scripts/dpo.py --dataset " + str(args.output) + " --output_dir dpo-out")
    return 0


def cmd_blend(args: argparse.Namespace) -> int:
    from ..augment import blend
    from ..io import load_seed_dataset

    sources = {name: load_seed_dataset(path) for name, path in parse_pairs(args.source, "--source").items()}
    result = blend(
        sources,
        ratios=parse_pairs(args.ratio, "--ratio", float) or None,
        counts=parse_pairs(args.count, "--count", int) or None,
        total=args.total,
        dedup=not args.no_dedup,
        seed=args.seed,
    )
    result.save(args.output)
    mixed, summary = result
    print(f"\nBlended {len(mixed)} rows:")
    print("  source               available   asked  selected   share")
    for row in summary:
        print(
            f"  {row['source']:<20} {row['available']:9d} {row['asked']:7d} {row['selected']:9d}  {row['share']:6.1%}"
        )
    return 0


def cmd_slots(args: argparse.Namespace) -> int:
    from ..augment import fill_slots, template_slots

    slots = template_slots(args.template)
    given = {
        k: [v.strip() for v in vals.split("|") if v.strip()]
        for k, vals in parse_pairs(args.values, "--values").items()
    }
    unknown = sorted(set(given) - set(slots))
    if unknown or not slots:  # before a model loads
        raise ValueError(
            f"Template slots are {', '.join(slots) or 'none'}; --values named {', '.join(unknown)}"
        )
    engine_config, _ = parse_config(args)
    result = fill_slots(
        args.template,
        given,
        engine_config,
        count=args.count,
        num=args.num,
        seed=args.seed,
        answer_sampling=_sampling(args, temperature=0.7, top_p=0.9),
        **checkpoint_args(args),
    )
    result.save(args.output)
    rows, values = result
    print(f"\n{len(rows)} instructions from the template; slot values:")
    for slot, slot_values in values.items():
        print(f"  [{slot}]: {', '.join(slot_values)}")
    print_rows(rows.to_list(), 2)
    return 0


def cmd_backtranslate(args: argparse.Namespace) -> int:
    from ..augment import back_translate
    from ..io import load_seed_dataset

    engine_config, _ = parse_config(args)
    dataset = load_seed_dataset(args.input)
    result = back_translate(
        dataset,
        engine_config,
        pivot=args.pivot,
        min_similarity=args.min_similarity,
        max_similarity=args.max_similarity,
        to_pivot_model=args.to_pivot_model,
        from_pivot_model=args.from_pivot_model,
        sampling=_sampling(args, temperature=0.3, top_p=0.95),
        source=args.input,
        **checkpoint_args(args),
    )
    result.save(args.output)
    kept, _ = result
    print(
        f"\nBack-translated {len(dataset)} instructions via {args.pivot}: {len(kept)} kept; "
        f"rejected: {result.summary['rejected']}"
    )
    return 0
