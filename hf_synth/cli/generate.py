"""``hf-synth self-instruct``, ``hf-synth evol-instruct`` and ``hf-synth generate``: parse, run the step,
save its result, print its summary."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..configuration import add_options, field_docs
from ..engine.engine_config import SamplingParams
from ..evol_instruct.evol_instruct_config import EvolInstructConfig
from ..input_files import check_input
from ..self_instruct.self_instruct_config import SelfInstructConfig
from .common import checkpoint_args, parse_config, parse_weights, print_rows, print_summary_counts
from .options import Command, add_checkpoint_args, add_config_arg, add_engine_args

logger = logging.getLogger("hf_synth")


def self_instruct_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seeds",
        "--input",
        dest="seeds",
        help="Seed file (.jsonl/.json/.csv/.parquet), dataset folder or Hub id "
        "(default: hf-synth's example seeds)",
    )
    parser.add_argument("--split", help="Split of the seed dataset (default: train, or the only split)")
    parser.add_argument("--output", required=True, help="Output folder")
    parser.add_argument("--config", help="YAML file with 'engine:' and 'self_instruct:' sections")
    parser.add_argument(
        "--max-new-tokens", type=int, help="Token limit for instruction and instance generation"
    )
    add_options(parser.add_argument_group("self-instruct"), SelfInstructConfig)
    add_checkpoint_args(parser)
    parser.add_argument("--show", type=int, default=3, help="Rows to print at the end (default 3)")
    add_engine_args(parser)


def cmd_self_instruct(args: argparse.Namespace) -> int:
    engine_config, config = parse_config(
        args, "self_instruct", SelfInstructConfig, sampling=("instruction_sampling", "instance_sampling")
    )
    check_input(args.seeds, what="seed", column=config.instruction_column)  # before torch, nltk, numba
    # The configuration is valid: now what reads data and loads models (torch, datasets).
    from ..self_instruct import SelfInstruct

    output = Path(args.output)
    pipeline = SelfInstruct(engine_config, config, **checkpoint_args(args))
    result = pipeline.run(args.seeds, split=args.split)
    paths = result.save(output)
    summary = result.summary_dict()

    print(f"\nSelf-Instruct finished in {summary['wall_seconds']}s over {summary['rounds']} round(s)")
    print(
        f"  requests: {summary['requests']} ({summary['requests_unparsable']} replies with no parsable list)"
    )
    print(
        f"  instructions generated: {summary['generated']}, kept: {len(result.dataset)}, "
        f"rejected: {summary['rejected']}"
    )
    print("  dropped per reason:")
    print_summary_counts(summary["dropped"])
    print(f"  tokens generated: {summary['completion_tokens']} at {summary['tokens_per_second']} tok/s")
    print(f"  dataset: {paths['dataset']} (load_from_disk), {paths['jsonl']}")
    print(f"  rejected rows: {paths['rejected']}; card: {output / 'README.md'}")
    print_rows(result.dataset.to_list(), args.show)
    return 0


SELF_INSTRUCT = Command(
    "self-instruct",
    "Grow an instruction dataset from seeds with Self-Instruct",
    self_instruct_args,
    cmd_self_instruct,
)


def evol_instruct_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input", required=True, help="Instruction file, dataset folder, hf-synth run folder or Hub id"
    )
    parser.add_argument("--split", help="Split of the input dataset (default: train, or the only split)")
    parser.add_argument("--output", required=True, help="Output folder")
    parser.add_argument("--config", help="YAML file with 'engine:' and 'evol_instruct:' sections")
    parser.add_argument("--judge-model", help="Judge model (default: the evolving model)")
    parser.add_argument(
        "--response-model", help="Model that answers the evolved instructions (default: --model)"
    )
    parser.add_argument(
        "--operations", help="Operation weights, e.g. deepening=2,breadth=1 (default: uniform)"
    )
    parser.add_argument(
        "--no-judge", action="store_true", help="Eliminate with the rules only, without an LLM judge"
    )
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        help="Token limit for every generation of the run: evolutions, judge verdicts and responses "
        "(default: per step, 160, 6 and 256)",
    )
    add_options(parser.add_argument_group("evol-instruct"), EvolInstructConfig)
    add_checkpoint_args(parser)
    parser.add_argument("--show", type=int, default=2, help="Lineages to print at the end (default 2)")
    add_engine_args(parser)


def cmd_evol_instruct(args: argparse.Namespace) -> int:
    from dataclasses import replace

    extra: dict = {}
    if args.operations:
        extra["operation_weights"] = parse_weights(args.operations)
    if args.no_judge:
        extra["use_judge"] = False
    engine_config, config = parse_config(
        args,
        "evol_instruct",
        EvolInstructConfig,
        sampling=("evolution_sampling", "judge_sampling", "response_sampling"),
        extra=extra,
    )
    check_input(args.input, column=config.instruction_column)  # before torch, nltk, numba
    # The configuration is valid: now what reads data and loads models (torch, datasets).
    from ..evol_instruct import EvolInstruct

    def other(model: str | None):  # None: the evolving model (one engine per distinct model)
        return replace(engine_config, model=model) if model else engine_config

    output = Path(args.output)
    pipeline = EvolInstruct(
        engine_config,
        config,
        judge_engine=other(args.judge_model),
        response_engine=other(args.response_model),
        **checkpoint_args(args),
    )
    result = pipeline.run(args.input, split=args.split)
    paths = result.save(output)
    summary = result.summary_dict()

    print(f"\nEvol-Instruct finished in {summary['wall_seconds']}s over {summary['rounds']} round(s)")
    print(f"  evolved: {summary['evolved']}, kept: {summary['kept']}, eliminated: {summary['eliminated']}")
    check = summary["judge_self_check"]
    if check:
        state = "enforced" if summary["judge_enforced"] else "NOT enforced (verdicts recorded only)"
        print(f"  judge self-check: {check['correct']}/{check['total']} control answers right; judge {state}")
    print("  per operation (kept/evolved):")
    for op, counts in summary["per_operation"].items():
        print(f"    {counts['kept']:4d}/{counts['evolved']:<4d} {op}")
    print("  eliminated per reason:")
    print_summary_counts(summary["reasons"])
    print(f"  tokens generated: {summary['completion_tokens']} at {summary['tokens_per_second']} tok/s")
    print(f"  dataset: {paths['dataset']} (load_from_disk), {paths['jsonl']}")
    print(f"  eliminated rows: {paths['rejected']}; card: {output / 'README.md'}")
    by_id = {r["id"]: r for r in result.dataset.to_list() + result.rejected.to_list()}
    shown = [r for r in result.dataset.to_list() if r["round"] == summary["rounds"]][: args.show]
    for row in shown:
        print("-" * 72)
        chain = [row]
        while chain[-1]["parent_id"] in by_id:
            chain.append(by_id[chain[-1]["parent_id"]])
        print(f"Lineage of {row['id']} (root {row['root_id']}):")
        print(f"  round 0: {chain[-1]['parent_instruction']}")
        for node in reversed(chain):
            print(f"  round {node['round']} [{node['evolution_op']}]: {node['instruction']}")
        print(f"  answer: {row['output'][:300]}")
    return 0


EVOL_INSTRUCT = Command(
    "evol-instruct",
    "Evolve an instruction dataset with Evol-Instruct",
    evol_instruct_args,
    cmd_evol_instruct,
)


def generate_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input", required=True, help="File, folder or Hub id of a dataset with a prompt column"
    )
    parser.add_argument("--output", required=True, help="Output folder (written by the main process)")
    parser.add_argument("--prompt-column", default="prompt", help="Column with a string or chat messages")
    parser.add_argument(
        "--output-column", default="output", help="Column the completions are written to (default: output)"
    )
    parser.add_argument("--max-new-tokens", type=int, default=256, help="Token limit per completion")
    add_config_arg(parser)
    sampling_docs = field_docs(SamplingParams)  # the sampling flags are SamplingParams' fields
    parser.add_argument(
        "--temperature", type=float, default=0.7, help=f"{sampling_docs['temperature']} (default 0.7)"
    )
    parser.add_argument("--top-p", type=float, default=1.0, help=f"{sampling_docs['top_p']} (default 1.0)")
    parser.add_argument("--seed", type=int, default=0, help=f"{sampling_docs['seed']} (default 0)")
    add_checkpoint_args(parser)
    add_engine_args(parser)


def cmd_generate(args: argparse.Namespace) -> int:
    """One completion per row of --input; data-parallel when started by `accelerate launch` (see
    :func:`hf_synth.engine.generate_step.generate_step`); --resume and --overwrite as for the other
    generating commands."""
    from ..engine.generate_step import generate_step
    from ..io import load_seed_dataset

    engine_config, _ = parse_config(args)
    dataset = load_seed_dataset(args.input)
    sampling = SamplingParams(
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p, seed=args.seed
    )
    result = generate_step(
        dataset,
        engine_config,
        sampling,
        prompt_column=args.prompt_column,
        output_column=args.output_column,
        source=args.input,
        **checkpoint_args(args),
    )
    if result is None:  # not the main process: the main process writes everything
        return 0
    paths = result.save(args.output)
    processes = result.summary["processes"]
    print(
        f"Wrote {len(result.dataset)} rows from {processes} process(es) to {paths['dataset']} and {paths['jsonl']}"
    )
    return 0


GENERATE = Command(
    "generate",
    "One completion per row of a prompt column (data-parallel under `accelerate launch`)",
    generate_args,
    cmd_generate,
    inputs=("input",),
)
