"""``hf-synth self-instruct`` and ``hf-synth evol-instruct``."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from ..configuration import from_dict, given_options, to_dict
from ..input_files import check_input
from .common import (
    card_extras,
    check_checkpoints,
    engine_config_from_args,
    engine_only_config,
    load_engine,
    load_sections,
    parse_weights,
    print_rows,
    print_summary_counts,
    run_diversity,
    write_step_card,
)

logger = logging.getLogger("hf_synth")


def cmd_self_instruct(args: argparse.Namespace) -> int:
    from ..self_instruct import SelfInstructConfig

    engine_config, si_data = load_sections(args, "self_instruct")
    si_data.update(given_options(args, SelfInstructConfig))
    if args.max_new_tokens is not None:
        for step in ("instruction_sampling", "instance_sampling"):
            si_data[step] = {**si_data.get(step, {}), "max_new_tokens": args.max_new_tokens}
    config = from_dict(SelfInstructConfig, si_data, "self_instruct")
    check_input(args.seeds, what="seed", column=config.instruction_column)  # before torch, nltk, numba
    # The configuration is valid: now what reads data and loads models (torch, datasets).
    from ..cards import self_instruct_card
    from ..engine.engine import model_id_of
    from ..io import EXAMPLE_SEEDS, load_seed_dataset, save_run
    from ..self_instruct import SelfInstruct, prepare_seed_pool

    seeds_name = args.seeds or f"hf-synth example seeds ({EXAMPLE_SEEDS.name})"
    seeds = load_seed_dataset(args.seeds, split=args.split)
    pool = prepare_seed_pool(seeds, config)  # bad seeds fail here, before a model is loaded
    check_checkpoints(args, SelfInstruct.run_fingerprint(config, model_id_of(engine_config), pool))
    output = Path(args.output)
    started = time.perf_counter()
    engine = load_engine(args, engine_config)
    pipeline = SelfInstruct(engine, config, checkpoint_dir=output / "checkpoints", overwrite=args.overwrite)
    result = pipeline.run(seeds)
    summary = result.summary.to_dict()
    summary["wall_seconds"] = round(time.perf_counter() - started, 1)
    summary["model"] = engine.model_id
    summary["diversity"] = run_diversity(result.dataset, seeds=pool["instruction"])
    paths = save_run(
        output,
        result.dataset,
        result.rejected,
        summary=summary,
        config={"engine": to_dict(engine_config), "self_instruct": to_dict(config)},
    )
    card = self_instruct_card(
        result.dataset,
        summary,
        model=engine.model_id,
        prompt_templates=pipeline.prompt_templates(),
        generation_params=pipeline.generation_params(),
        seeds=seeds_name,
        **card_extras(result.dataset, args.seeds),
    )
    card.save(str(output / "README.md"))

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


def cmd_evol_instruct(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ..evol_instruct import EvolInstructConfig

    engine_config, data = load_sections(args, "evol_instruct")
    data.update(given_options(args, EvolInstructConfig))
    if args.operations:
        data["operation_weights"] = parse_weights(args.operations)
    if args.no_judge:
        data["use_judge"] = False
    if args.max_new_tokens is not None:  # one limit for every generation of the run, as in the other commands
        for step in ("evolution_sampling", "judge_sampling", "response_sampling"):
            data[step] = {**data.get(step, {}), "max_new_tokens": args.max_new_tokens}
    config = from_dict(EvolInstructConfig, data, "evol_instruct")
    check_input(args.input, column=config.instruction_column)  # before torch, nltk, numba
    # The configuration is valid: now what reads data and loads models (torch, datasets).
    from ..cards import evol_instruct_card
    from ..engine import Engine
    from ..engine.engine import model_id_of
    from ..evol_instruct import EvolInstruct, prepare_roots
    from ..io import load_seed_dataset, save_run

    dataset = load_seed_dataset(args.input, split=args.split)
    roots = prepare_roots(dataset, config)  # bad input fails here, before a model is loaded
    models = (None, args.judge_model, args.response_model)  # None: the evolving model
    ids = [model_id_of(replace(engine_config, model=m or engine_config.model)) for m in models]
    check_checkpoints(args, EvolInstruct.run_fingerprint(config, ids, roots))

    started = time.perf_counter()
    engine = load_engine(args, engine_config)
    loaded = {engine_config.model: engine}

    def other(model: str | None) -> Engine:
        if model is None or model in loaded:
            return loaded.get(model, engine)
        loaded[model] = load_engine(args, replace(engine_config, model=model))
        return loaded[model]

    pipeline = EvolInstruct(
        engine,
        config,
        judge_engine=other(args.judge_model),
        response_engine=other(args.response_model),
        checkpoint_dir=Path(args.output) / "checkpoints",
        overwrite=args.overwrite,
    )
    result = pipeline.run(dataset)
    summary = result.summary.to_dict()
    summary["wall_seconds"] = round(time.perf_counter() - started, 1)
    column = config.instruction_column
    summary["diversity"] = run_diversity(
        result.dataset, seeds=dataset[column] if column in dataset.column_names else None
    )
    output = Path(args.output)
    paths = save_run(
        output,
        result.dataset,
        result.rejected,
        summary=summary,
        config={
            "engine": to_dict(engine_config),
            "evol_instruct": to_dict(config),
            "judge_model": pipeline.judge_engine.model_id,
            "response_model": pipeline.response_engine.model_id,
        },
    )
    card = evol_instruct_card(
        result.dataset,
        summary,
        model=engine.model_id,
        judge_model=pipeline.judge_engine.model_id if config.use_judge else "",
        response_model=pipeline.response_engine.model_id,
        prompt_templates=pipeline.prompt_templates(),
        generation_params=pipeline.generation_params(),
        source=str(args.input),
        **card_extras(result.dataset, args.input),
    )
    card.save(str(output / "README.md"))

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


def cmd_generate(args: argparse.Namespace) -> int:
    """One completion per row of --input; data-parallel when started by `accelerate launch`.

    Every completion is journaled under --output/checkpoints as it finishes (one journal per process when
    data-parallel), so a rerun of an interrupted run generates only what is missing; --resume and
    --overwrite as for the other generating commands."""
    from ..checkpoint import Checkpointer
    from ..engine import SamplingParams
    from ..engine.distributed import generate_distributed, process_state
    from ..engine.engine import model_id_of
    from ..io import load_seed_dataset, save_run
    from ..rows import fingerprint_rows

    engine_only_config(args)
    engine_config = engine_config_from_args(args)
    dataset = load_seed_dataset(args.input)
    sampling = SamplingParams(
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p, seed=args.seed
    )
    state = process_state()

    def fingerprint(model: str) -> dict:
        return {
            "model": model,
            "sampling": sampling.to_dict(),
            "prompt_column": args.prompt_column,
            "processes": state.num_processes,  # each process journals its own shard
            "input": fingerprint_rows(dataset),
        }

    check_checkpoints(args, fingerprint(model_id_of(engine_config)))  # before the model loads
    engine = load_engine(args, engine_config)
    root = Path(args.output) / "checkpoints"
    if state.is_main_process:
        Checkpointer(root).bind(fingerprint(engine.model_id), overwrite=args.overwrite)
    state.wait_for_everyone()  # an --overwrite has emptied the folder before any process journals in it
    journal = Checkpointer(root if state.num_processes == 1 else root / f"rank-{state.process_index}")
    engine = journal.engine(engine)
    started = time.perf_counter()
    try:
        result = generate_distributed(
            dataset, engine, sampling, prompt_column=args.prompt_column, output_column=args.output_column
        )
    finally:
        journal.close()
    if result is None:  # not the main process: the main process writes everything
        return 0
    processes = state.num_processes
    summary = {
        "rows": len(result),
        "processes": processes,
        "reused_completions": engine.reused,
        "completion_tokens": int(sum(result["completion_tokens"])),
        "seconds": round(time.perf_counter() - started, 2),
        "model": engine.model_id,
        "backend": engine.backend,
        "engines": [engine.describe()],
        "sampling": sampling.to_dict(),
    }
    paths = save_run(args.output, result, summary=summary)
    write_step_card(
        args,
        result,
        method="generate",
        tags=["generated"],
        steps=[
            f"Input: `{args.input}` ({len(result)} rows); one completion per row of `{args.prompt_column}` "
            f"into `{args.output_column}`, over {processes} process(es)."
        ],
        engines=summary["engines"],
        settings=summary["sampling"],
    )
    print(f"Wrote {len(result)} rows from {processes} process(es) to {paths['dataset']} and {paths['jsonl']}")
    return 0
