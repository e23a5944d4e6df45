"""The diversity subcommands: paraphrase, negatives, blend, slots, backtranslate. Each parses its flags and
--config, runs the step (which binds its checkpoints), saves the result and prints its summary."""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace

from ..augment.augment_config import NegativeConfig, ParaphraseConfig
from ..configuration import add_options
from ..input_files import check_input
from .common import checkpoint_args, parse_config, parse_pairs, print_rows
from .options import Command, add_checkpoint_args, add_config_arg, add_engine_args, add_max_new_tokens

logger = logging.getLogger("hf_synth")


def _sampling(args: argparse.Namespace, temperature: float, top_p: float):
    """--max-new-tokens as the step's sampling (None: the step's own default)."""
    if args.max_new_tokens is None:
        return None
    from ..engine import SamplingParams

    return SamplingParams(max_new_tokens=args.max_new_tokens, temperature=temperature, top_p=top_p)


def paraphrase_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="Dataset file, folder, hf-synth run folder or Hub id")
    parser.add_argument("--output", required=True, help="Output folder")
    add_config_arg(parser, "'engine:' and 'paraphrase:'")
    add_max_new_tokens(parser, "each paraphrase")
    add_options(parser.add_argument_group("paraphrase"), ParaphraseConfig)
    parser.add_argument(
        "--check-task",
        action="store_true",
        help="Ask a judge whether each reworded instruction still asks for the same thing",
    )
    parser.add_argument("--judge-model", help="Model for --check-task (default: --model)")
    add_checkpoint_args(parser)
    add_engine_args(parser)


def cmd_paraphrase(args: argparse.Namespace) -> int:
    from ..augment import paraphrase
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


PARAPHRASE = Command(
    "paraphrase",
    "Add k paraphrases of each row's instruction or response",
    paraphrase_args,
    cmd_paraphrase,
    inputs=("input",),
)


def negatives_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="Dataset file, folder, hf-synth run folder or Hub id")
    parser.add_argument(
        "--output", required=True, help="Output folder (prompt/chosen/rejected, for scripts/dpo.py)"
    )
    add_config_arg(parser, "'engine:' and 'negatives:'")
    add_max_new_tokens(parser, "each flawed answer")
    add_options(parser.add_argument_group("negatives"), NegativeConfig)
    add_checkpoint_args(parser)
    add_engine_args(parser)


def cmd_negatives(args: argparse.Namespace) -> int:
    from ..augment import preference_pairs
    from ..io import load_seed_dataset

    engine_config, config = parse_config(args, "negatives", NegativeConfig, sampling=("sampling",))
    dataset = load_seed_dataset(args.input)
    result = preference_pairs(dataset, engine_config, config, source=args.input, **checkpoint_args(args))
    paths = result.save(args.output)
    pairs, rejected = result
    print(f"\n{len(pairs)} preference pairs ({len(rejected)} rejected) -> {paths['dataset']}")
    print("  train with: python scripts/dpo.py --dataset " + str(args.output) + " --output_dir dpo-out")
    return 0


NEGATIVES = Command(
    "negatives",
    "Preference pairs: each row's output vs a deliberately flawed answer",
    negatives_args,
    cmd_negatives,
    inputs=("input",),
)


def blend_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        action="append",
        required=True,
        metavar="NAME=PATH",
        help="A source: name=file, folder, hf-synth run folder or Hub id (repeat)",
    )
    parser.add_argument("--ratio", action="append", metavar="NAME=R", help="Share of a source (repeat)")
    parser.add_argument("--count", action="append", metavar="NAME=N", help="Rows from a source (repeat)")
    parser.add_argument("--total", type=int, help="Rows in the mix when --ratio is given")
    parser.add_argument("--no-dedup", action="store_true", help="Keep exact duplicates across sources")
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="Seed of the row sampling and of the shuffle of the mix (default 0)",
    )
    parser.add_argument("--output", required=True, help="Output folder")


def cmd_blend(args: argparse.Namespace) -> int:
    for item in args.source or []:  # a bad file is refused before torch, nltk and numba are imported
        name, sep, path = item.partition("=")
        if sep and name:  # a malformed pair is refused by parse_pairs below
            check_input(path)
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


BLEND = Command("blend", "Mix several datasets with ratios or counts per source", blend_args, cmd_blend)


def slots_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--template", required=True, help='e.g. "Explain [X] in the context of [Y] for [Z]"')
    parser.add_argument(
        "--values",
        action="append",
        metavar="SLOT=a|b|c",
        help="Values for a slot, separated by | (repeat); other slots get values from the model",
    )
    parser.add_argument("--count", type=int, default=8, help="Values the model proposes per slot (default 8)")
    parser.add_argument("--num", type=int, default=20, help="Instructions to make (distinct combinations)")
    parser.add_argument(
        "--seed", type=int, default=0, help="Seed of the choice of slot combinations (default 0)"
    )
    parser.add_argument("--output", required=True, help="Output folder")
    add_config_arg(parser)
    add_max_new_tokens(parser, "each answer")
    add_checkpoint_args(parser)
    add_engine_args(parser)


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


SLOTS = Command(
    "slots", "Fill a template's [SLOTS] with varied values and answer the results", slots_args, cmd_slots
)


def backtranslate_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="Dataset file, folder, hf-synth run folder or Hub id")
    parser.add_argument("--output", required=True, help="Output folder")
    parser.add_argument("--pivot", default="French", help="Pivot language (default French)")
    parser.add_argument(
        "--to-pivot-model", help="Translation model (path/Hub id, e.g. a Marian model) into the pivot"
    )
    parser.add_argument("--from-pivot-model", help="Translation model back from the pivot")
    parser.add_argument(
        "--min-similarity",
        type=float,
        default=0.75,
        help="Reject a rewording whose embedding cosine to the original is below this: its meaning "
        "drifted (default 0.75)",
    )
    parser.add_argument(
        "--max-similarity",
        type=float,
        default=0.98,
        help="Reject a rewording whose embedding cosine to the original is this or above: it barely "
        "changed (default 0.98)",
    )
    add_config_arg(parser)
    add_max_new_tokens(parser, "each translation")
    add_checkpoint_args(parser)
    add_engine_args(parser)


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


BACKTRANSLATE = Command(
    "backtranslate",
    "Reword instructions through a pivot language and back",
    backtranslate_args,
    cmd_backtranslate,
    inputs=("input",),
)
