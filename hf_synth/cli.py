"""The ``hf-synth`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from .configuration import from_dict, load_yaml, to_dict
from .engine import EngineConfig

logger = logging.getLogger("hf_synth")


def _add_engine_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model", help="Local folder or Hub id of a causal LM (default: embedded SmolLM2-135M-Instruct)"
    )
    group.add_argument("--batch-size", type=int, help="Prompts generated together (default 16)")
    group.add_argument("--device", help="Force a device such as cpu or cuda:0 (default: accelerate decides)")
    group.add_argument("--dtype", choices=["auto", "float32", "float16", "bfloat16"])


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hf-synth", description="Build synthetic fine-tuning datasets.")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", required=True)

    si = sub.add_parser("self-instruct", help="Grow an instruction dataset from seeds with Self-Instruct")
    si.add_argument(
        "--seeds",
        help="Seed file (.jsonl/.json/.csv/.parquet), dataset folder or Hub id "
        "(default: hf-synth's example seeds)",
    )
    si.add_argument("--split", help="Split of the seed dataset (default: train, or the only split)")
    si.add_argument("--num-instructions", type=int, help="Target number of new instructions (default 100)")
    si.add_argument("--output", required=True, help="Output folder")
    si.add_argument("--config", help="YAML file with 'engine:' and 'self_instruct:' sections")
    si.add_argument("--max-rounds", type=int)
    si.add_argument("--requests-per-round", type=int)
    si.add_argument("--instruction-column", help="Seed column holding the instruction (default: instruction)")
    si.add_argument("--input-column", help="Seed column holding an example input (default: input)")
    si.add_argument("--output-column", help="Seed column holding an example output (default: output)")
    si.add_argument("--task-type-method", choices=["llm", "heuristic"])
    si.add_argument("--max-new-tokens", type=int, help="Token limit for instruction and instance generation")
    si.add_argument("--seed", type=int)
    si.add_argument("--focus-skills", help="Comma-separated skills to steer toward (see hf-synth report)")
    si.add_argument("--include-seeds", action="store_true", default=None, help="Also output the seed rows")
    si.add_argument(
        "--resume",
        action="store_true",
        help="Continue an interrupted run in --output (an error if it has no checkpoints)",
    )
    si.add_argument(
        "--overwrite",
        action="store_true",
        help="Discard checkpoints of an earlier run in --output instead of resuming",
    )
    si.add_argument("--show", type=int, default=3, help="Rows to print at the end (default 3)")
    _add_engine_args(si)

    ev = sub.add_parser("evol-instruct", help="Evolve an instruction dataset with Evol-Instruct")
    ev.add_argument(
        "--input", required=True, help="Instruction file, dataset folder, hf-synth run folder or Hub id"
    )
    ev.add_argument("--split", help="Split of the input dataset (default: train, or the only split)")
    ev.add_argument("--rounds", type=int, help="Evolution rounds (default 2)")
    ev.add_argument("--output", required=True, help="Output folder")
    ev.add_argument("--config", help="YAML file with 'engine:' and 'evol_instruct:' sections")
    ev.add_argument("--judge-model", help="Judge model (default: the evolving model)")
    ev.add_argument("--response-model", help="Model that answers the evolved instructions (default: --model)")
    ev.add_argument("--operations", help="Operation weights, e.g. deepening=2,breadth=1 (default: uniform)")
    ev.add_argument(
        "--no-judge", action="store_true", help="Eliminate with the rules only, without an LLM judge"
    )
    ev.add_argument("--instruction-column", help="Column holding the instruction (default: instruction)")
    ev.add_argument(
        "--input-column", help="Column holding an input appended to the instruction (default: input)"
    )
    ev.add_argument("--max-new-tokens", type=int, help="Token limit for the responses")
    ev.add_argument("--seed", type=int)
    ev.add_argument(
        "--resume",
        action="store_true",
        help="Continue an interrupted run in --output (an error if it has no checkpoints)",
    )
    ev.add_argument(
        "--overwrite",
        action="store_true",
        help="Discard checkpoints of an earlier run in --output instead of resuming",
    )
    ev.add_argument("--show", type=int, default=2, help="Lineages to print at the end (default 2)")
    _add_engine_args(ev)

    flt = sub.add_parser(
        "filter", help="Score and filter any dataset (ROUGE novelty, near-duplicates, length, ...)"
    )
    flt.add_argument("--input", required=True, help="Dataset file, folder, hf-synth run folder or Hub id")
    flt.add_argument("--split", help="Split of the input dataset")
    flt.add_argument("--config", required=True, help="YAML file with a 'filters:' list")
    flt.add_argument(
        "--output", required=True, help="Output folder (kept rows; dropped rows in rejected.jsonl)"
    )
    flt.add_argument(
        "--overwrite", action="store_true", help="Discard checkpoints of an earlier run in --output"
    )

    rep = sub.add_parser("report", help="Skill coverage, filter statistics and an HTML quality report")
    rep.add_argument("path", nargs="?", help="hf-synth run folder, dataset file or folder, or Hub id")
    rep.add_argument("--input", help="The same as PATH")
    rep.add_argument("--split", help="Split of the input dataset")
    rep.add_argument("--column", default="instruction", help="Column to classify (default: instruction)")
    rep.add_argument("--taxonomy", help="YAML file 'skill: description' (default: hf-synth's skills)")
    rep.add_argument(
        "--embedding-model", help="sentence-transformers model (default: packaged all-MiniLM-L6-v2)"
    )
    rep.add_argument("--out", help="Write the report here: .html (plots) or .json (numbers)")
    rep.add_argument("--seeds", help="Seed file/folder: plot each instruction's ROUGE-L to its nearest seed")

    push = sub.add_parser("push", help="Publish a run folder: parquet shards + dataset card, in one commit")
    push.add_argument("path", help="Output folder of an hf-synth run (dataset/, README.md, rejected.jsonl)")
    push.add_argument("repo_id", nargs="?", help="Dataset repo on the Hub, e.g. user/my-synthetic-data")
    push.add_argument("--private", action="store_true", help="Create the repo as private")
    push.add_argument("--token", help="Hub token (default: HF_TOKEN or the one saved by `hf auth login`)")
    push.add_argument("--local-dir", help="Write the same repo layout here instead of (or before) pushing")
    push.add_argument(
        "--new-only", action="store_true", help="Fail if the repo exists instead of updating it"
    )

    para = sub.add_parser("paraphrase", help="Add k paraphrases of each row's instruction or response")
    para.add_argument("--input", required=True, help="Dataset file, folder, hf-synth run folder or Hub id")
    para.add_argument("--output", required=True, help="Output folder")
    para.add_argument("--k", type=int, default=2, help="Paraphrases per row (default 2)")
    para.add_argument("--target", choices=["instruction", "output"], default="instruction")
    para.add_argument(
        "--max-rouge-l", type=float, default=0.8, help="Reject rewordings at least this similar"
    )
    para.add_argument(
        "--check-task",
        action="store_true",
        help="Ask a judge whether each reworded instruction still asks for the same thing",
    )
    para.add_argument("--judge-model", help="Model for --check-task (default: --model)")
    para.add_argument("--overwrite", action="store_true", help="Discard checkpoints of an earlier run")
    _add_engine_args(para)

    neg = sub.add_parser(
        "negatives", help="Preference pairs: each row's output vs a deliberately flawed answer"
    )
    neg.add_argument("--input", required=True, help="Dataset file, folder, hf-synth run folder or Hub id")
    neg.add_argument(
        "--output", required=True, help="Output folder (prompt/chosen/rejected, for scripts/dpo.py)"
    )
    neg.add_argument("--kinds", help="Comma-separated flaw kinds (default: all)")
    neg.add_argument("--seed", type=int, default=0)
    neg.add_argument("--overwrite", action="store_true", help="Discard checkpoints of an earlier run")
    _add_engine_args(neg)

    bl = sub.add_parser("blend", help="Mix several datasets with ratios or counts per source")
    bl.add_argument(
        "--source",
        action="append",
        required=True,
        metavar="NAME=PATH",
        help="A source: name=file, folder, hf-synth run folder or Hub id (repeat)",
    )
    bl.add_argument("--ratio", action="append", metavar="NAME=R", help="Share of a source (repeat)")
    bl.add_argument("--count", action="append", metavar="NAME=N", help="Rows from a source (repeat)")
    bl.add_argument("--total", type=int, help="Rows in the mix when --ratio is given")
    bl.add_argument("--no-dedup", action="store_true", help="Keep exact duplicates across sources")
    bl.add_argument("--seed", type=int, default=0)
    bl.add_argument("--output", required=True, help="Output folder")

    sl = sub.add_parser("slots", help="Fill a template's [SLOTS] with varied values and answer the results")
    sl.add_argument("--template", required=True, help='e.g. "Explain [X] in the context of [Y] for [Z]"')
    sl.add_argument(
        "--values",
        action="append",
        metavar="SLOT=a|b|c",
        help="Values for a slot, separated by | (repeat); other slots get values from the model",
    )
    sl.add_argument("--count", type=int, default=8, help="Values the model proposes per slot (default 8)")
    sl.add_argument("--num", type=int, default=20, help="Instructions to make (distinct combinations)")
    sl.add_argument("--seed", type=int, default=0)
    sl.add_argument("--output", required=True, help="Output folder")
    _add_engine_args(sl)

    bt = sub.add_parser("backtranslate", help="Reword instructions through a pivot language and back")
    bt.add_argument("--input", required=True, help="Dataset file, folder, hf-synth run folder or Hub id")
    bt.add_argument("--output", required=True, help="Output folder")
    bt.add_argument("--pivot", default="French", help="Pivot language (default French)")
    bt.add_argument(
        "--to-pivot-model", help="Translation model (path/Hub id, e.g. a Marian model) into the pivot"
    )
    bt.add_argument("--from-pivot-model", help="Translation model back from the pivot")
    bt.add_argument("--min-similarity", type=float, default=0.75)
    bt.add_argument("--max-similarity", type=float, default=0.98)
    bt.add_argument("--overwrite", action="store_true", help="Discard checkpoints of an earlier run")
    _add_engine_args(bt)

    show = sub.add_parser("show", help="Print rows of a dataset written by hf-synth")
    show.add_argument("path", help="Output folder of a run, or its dataset/ folder")
    show.add_argument("-n", type=int, default=3, help="Number of rows")
    return parser


def _overrides(args: argparse.Namespace, mapping: dict[str, str]) -> dict[str, Any]:
    return {
        key: getattr(args, attr) for attr, key in mapping.items() if getattr(args, attr, None) is not None
    }


def _check_resume(args: argparse.Namespace) -> None:
    """--resume needs checkpoints; --resume and --overwrite contradict each other. Without either, a run
    with the same configuration continues from its checkpoints and a different one is refused."""
    if args.resume and args.overwrite:
        raise ValueError("--resume and --overwrite contradict each other; pass one of them.")
    fingerprint = Path(args.output) / "checkpoints" / "fingerprint.json"
    if args.resume and not fingerprint.is_file():
        raise FileNotFoundError(f"Nothing to resume in {args.output} (no checkpoints); run without --resume.")


def _load_sections(args: argparse.Namespace, section: str) -> tuple[EngineConfig, dict[str, Any]]:
    """The engine config and the raw ``section`` dict from --config, with engine flags applied."""
    file_config = load_yaml(args.config) if args.config else {}
    unknown = sorted(set(file_config) - {"engine", section})
    if unknown:
        raise ValueError(
            f"Unknown section(s) {', '.join(unknown)} in {args.config}; valid: engine, {section}"
        )
    engine_data = {
        **file_config.get("engine", {}),
        **_overrides(
            args, {"model": "model", "batch_size": "batch_size", "device": "device", "dtype": "dtype"}
        ),
    }
    return from_dict(EngineConfig, engine_data, "engine"), dict(file_config.get(section, {}))


def _print_summary_counts(counts: dict[str, int]) -> None:
    for reason, count in counts.items():
        print(f"    {count:5d}  {reason}")


def _print_rows(rows: list[dict], n: int) -> None:
    for row in rows[:n]:
        print("-" * 72)
        details = [
            f"round {row['round']}" if row.get("round") is not None else "",
            row.get("generation_order") or row.get("strategy") or "",
        ]
        print(f"[{row.get('id')}] {' '.join(d for d in details if d)}".rstrip())
        print(f"Instruction: {row['instruction']}")
        if row.get("input"):
            print(f"Input: {row['input']}")
        print(f"Output: {row['output']}")
    if rows[:n]:
        print("-" * 72)


def _cmd_self_instruct(args: argparse.Namespace) -> int:
    from .cards import self_instruct_card
    from .engine import GenerationEngine
    from .io import EXAMPLE_SEEDS, load_seed_dataset, save_run
    from .self_instruct import SelfInstruct, SelfInstructConfig, prepare_seed_pool

    _check_resume(args)
    engine_config, si_data = _load_sections(args, "self_instruct")
    si_data.update(
        _overrides(
            args,
            {
                "num_instructions": "num_instructions",
                "max_rounds": "max_rounds",
                "requests_per_round": "requests_per_round",
                "instruction_column": "instruction_column",
                "input_column": "input_column",
                "output_column": "output_column",
                "task_type_method": "task_type_method",
                "seed": "seed",
                "include_seeds": "include_seeds",
            },
        )
    )
    if args.focus_skills:
        si_data["focus_skills"] = [s.strip() for s in args.focus_skills.split(",") if s.strip()]
    if args.max_new_tokens is not None:
        for step in ("instruction_sampling", "instance_sampling"):
            si_data[step] = {**si_data.get(step, {}), "max_new_tokens": args.max_new_tokens}
    config = from_dict(SelfInstructConfig, si_data, "self_instruct")

    seeds_name = args.seeds or f"hf-synth example seeds ({EXAMPLE_SEEDS.name})"
    seeds = load_seed_dataset(args.seeds, split=args.split)
    prepare_seed_pool(seeds, config)  # bad seeds fail here, before a model is loaded
    output = Path(args.output)
    started = time.perf_counter()
    engine = GenerationEngine.from_config(engine_config)
    pipeline = SelfInstruct(engine, config, checkpoint_dir=output / "checkpoints", overwrite=args.overwrite)
    result = pipeline.run(seeds)
    summary = result.summary.to_dict()
    summary["wall_seconds"] = round(time.perf_counter() - started, 1)
    summary["model"] = engine.model_id
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
        **_card_extras(result.dataset, args.seeds),
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
    _print_summary_counts(summary["dropped"])
    print(f"  tokens generated: {summary['completion_tokens']} at {summary['tokens_per_second']} tok/s")
    print(f"  dataset: {paths['dataset']} (load_from_disk), {paths['jsonl']}")
    print(f"  rejected rows: {paths['rejected']}; card: {output / 'README.md'}")
    _print_rows(result.dataset.to_list(), args.show)
    return 0


def _card_extras(dataset, source: str | None) -> dict[str, Any]:
    """Skill coverage (best effort: a missing embedding model only costs the card that section) and the Hub
    id the data came from, for dataset cards."""
    from pathlib import Path as _Path

    extras: dict[str, Any] = {"source_datasets": [] if source is None or _Path(source).exists() else [source]}
    try:
        from .curation import classify_skills, coverage_report

        extras["coverage"] = coverage_report(classify_skills(dataset)) if len(dataset) else None
    except Exception as err:  # noqa: BLE001 - the card is still useful without this section
        logger.warning("Skill coverage left out of the card: %s", err)
    return extras


def _parse_weights(text: str) -> dict[str, float]:
    weights = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            weights[name.strip()] = float(value) if sep else 1.0
        except ValueError as err:
            raise ValueError(
                f"--operations: {part!r} is not NAME=NUMBER (e.g. deepening=2,breadth=1)"
            ) from err
    return weights


def _cmd_evol_instruct(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from .cards import evol_instruct_card
    from .engine import GenerationEngine
    from .evol_instruct import EvolInstruct, EvolInstructConfig, prepare_roots
    from .io import load_seed_dataset, save_run

    _check_resume(args)
    engine_config, data = _load_sections(args, "evol_instruct")
    data.update(
        _overrides(
            args,
            {
                "rounds": "rounds",
                "instruction_column": "instruction_column",
                "input_column": "input_column",
                "seed": "seed",
            },
        )
    )
    if args.operations:
        data["operation_weights"] = _parse_weights(args.operations)
    if args.no_judge:
        data["use_judge"] = False
    if args.max_new_tokens is not None:
        data["response_sampling"] = {
            **data.get("response_sampling", {}),
            "max_new_tokens": args.max_new_tokens,
        }
    config = from_dict(EvolInstructConfig, data, "evol_instruct")
    dataset = load_seed_dataset(args.input, split=args.split)
    prepare_roots(dataset, config)  # bad input fails here, before a model is loaded

    started = time.perf_counter()
    engine = GenerationEngine.from_config(engine_config)
    loaded = {engine_config.model: engine}

    def other(model: str | None) -> GenerationEngine:
        if model is None or model in loaded:
            return loaded.get(model, engine)
        loaded[model] = GenerationEngine.from_config(replace(engine_config, model=model))
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
    output = Path(args.output)
    paths = save_run(
        output,
        result.dataset,
        result.eliminated,
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
        **_card_extras(result.dataset, args.input),
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
    _print_summary_counts(summary["reasons"])
    print(f"  tokens generated: {summary['completion_tokens']} at {summary['tokens_per_second']} tok/s")
    print(f"  dataset: {paths['dataset']} (load_from_disk), {paths['jsonl']}")
    print(f"  eliminated rows: {paths['rejected']}; card: {output / 'README.md'}")
    by_id = {r["id"]: r for r in result.dataset.to_list() + result.eliminated.to_list()}
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


def _cmd_filter(args: argparse.Namespace) -> int:
    from collections import Counter

    from .checkpoint import Checkpointer
    from .filters import resolve_filters, run_filters, split_filtered
    from .io import load_seed_dataset, save_run
    from .rows import fingerprint_rows

    config = load_yaml(args.config)
    unknown = sorted(set(config) - {"filters"})
    if unknown or not isinstance(config.get("filters"), list):
        raise ValueError(
            f"{args.config} must hold a 'filters:' list (unknown keys: {', '.join(unknown) or 'none'})"
        )
    resolve_filters(config["filters"])  # bad specs fail before anything is loaded
    dataset = load_seed_dataset(args.input, split=args.split)
    started = time.perf_counter()
    checkpointer = Checkpointer(Path(args.output) / "checkpoints")
    checkpointer.bind(
        {"filters": config["filters"], "input": fingerprint_rows(dataset)}, overwrite=args.overwrite
    )
    scored = run_filters(dataset, config["filters"], checkpointer=checkpointer)
    kept, dropped = split_filtered(scored)
    reasons: Counter = Counter(r for row in dropped["filter_reasons"] for r in row)
    summary = {
        "input": str(args.input),
        "rows": len(dataset),
        "kept": len(kept),
        "dropped": len(dropped),
        "reasons": dict(reasons.most_common()),
        "seconds": round(time.perf_counter() - started, 2),
        "filters": config["filters"],
    }
    paths = save_run(args.output, kept, dropped, summary=summary, config=config)
    print(
        f"\nFiltered {len(dataset)} rows in {summary['seconds']}s: kept {len(kept)}, dropped {len(dropped)}"
    )
    _print_summary_counts(summary["reasons"])
    print(f"  kept: {paths['dataset']}, {paths['jsonl']}; dropped: {paths['rejected']}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from collections import Counter

    from datasets import load_dataset

    from .curation import classify_skills, coverage_report, load_taxonomy
    from .io import load_seed_dataset

    source = args.path or args.input
    if not source:
        raise ValueError("Name the dataset to report on: hf-synth report PATH (or --input PATH).")
    taxonomy = load_taxonomy(args.taxonomy)
    dataset = load_seed_dataset(source, split=args.split)
    rejected = None
    rejected_file = Path(source) / "rejected.jsonl"
    if rejected_file.is_file() and rejected_file.stat().st_size:
        rejected = load_dataset("json", data_files=str(rejected_file), split="train")
    report = coverage_report(
        classify_skills(dataset, args.column, taxonomy=taxonomy, model=args.embedding_model), taxonomy
    )
    drops = rejected if rejected is not None else dataset
    for column in ("filter_reasons", "elimination_reasons"):
        if column in drops.column_names:
            report["filter_reasons"] = dict(Counter(r for row in drops[column] for r in row).most_common())
            break
    print(f"\n{report['rows']} rows, skill coverage:")
    for name, row in sorted(report["skills"].items(), key=lambda kv: -kv[1]["count"]):
        print(f"  {row['count']:6d}  {row['share']:6.1%}  {'#' * round(row['share'] * 50):<25} {name}")
    print(f"  missing: {', '.join(report['missing']) or 'none'}")
    if report["under_covered"]:
        print(f"  under-covered: {', '.join(report['under_covered'])}")
        focus = ",".join(report["under_covered"][:4])
        print(f"  steer the next run: hf-synth self-instruct ... --focus-skills {focus}")
    for reason, count in report.get("filter_reasons", {}).items():
        print(f"  dropped {count:5d}  {reason}")
    if args.out and args.out.endswith((".html", ".htm")):
        from .report import write_report

        seeds = None
        if args.seeds:
            seed_data = load_seed_dataset(args.seeds)
            seeds = (
                [t for t in seed_data[args.column] if t] if args.column in seed_data.column_names else None
            )
        write_report(
            args.out,
            dataset,
            rejected=rejected,
            seeds=seeds,
            coverage=report,
            title=f"hf-synth report: {source}",
        )
        print(f"  report: {args.out}")
    elif args.out:
        Path(args.out).write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


def _cmd_push(args: argparse.Namespace) -> int:
    from datasets import load_dataset, load_from_disk
    from huggingface_hub import DatasetCard

    from .hub import push_to_hub, write_repo

    run = Path(args.path)
    if not (run / "dataset" / "state.json").is_file():
        raise FileNotFoundError(
            f"{run} is not an hf-synth output folder (no dataset/ inside); pass a run's --output."
        )
    if not args.repo_id and not args.local_dir:
        raise ValueError("Name a REPO_ID to push to, or --local-dir to write the repo layout locally.")
    dataset = load_from_disk(str(run / "dataset"))
    rejected_file = run / "rejected.jsonl"
    rejected = None
    if rejected_file.is_file() and rejected_file.stat().st_size:
        rejected = load_dataset("json", data_files=str(rejected_file), split="train")
    card = DatasetCard.load(run / "README.md") if (run / "README.md").is_file() else None
    if args.local_dir:
        write_repo(dataset, args.local_dir, card=card, rejected=rejected)
        print(f"Wrote the repo layout to {args.local_dir} (load_dataset({str(args.local_dir)!r}))")
    if args.repo_id:
        url = push_to_hub(
            dataset,
            args.repo_id,
            card=card,
            rejected=rejected,
            private=args.private,
            token=args.token,
            exist_ok=not args.new_only,
        )
        print(f"Pushed {len(dataset)} rows to {url}")
    return 0


def _pairs(values: list[str] | None, option: str, cast=str) -> dict[str, Any]:
    out = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"{option} {item!r} is not NAME=VALUE")
        try:
            out[name] = cast(value)
        except ValueError as err:
            raise ValueError(f"{option} {item!r}: {value!r} is not a number") from err
    return out


def _cmd_paraphrase(args: argparse.Namespace) -> int:
    from .augment import ParaphraseConfig, paraphrase
    from .checkpoint import Checkpointer
    from .engine import GenerationEngine
    from .io import load_seed_dataset, save_run
    from .rows import fingerprint_rows

    config = ParaphraseConfig(k=args.k, target=args.target, max_rouge_l=args.max_rouge_l)
    dataset = load_seed_dataset(args.input)
    checkpointer = Checkpointer(Path(args.output) / "checkpoints")
    engine = _engine_from_args(args)
    checkpointer.bind(
        {
            "config": to_dict(config),
            "model": engine.model_id,
            "check_task": args.check_task,
            "judge": args.judge_model,
            "input": fingerprint_rows(dataset),
        },
        overwrite=args.overwrite,
    )
    judge = None
    if args.check_task:
        judge = engine
        if args.judge_model and args.judge_model != engine.model_id:
            judge = GenerationEngine.from_config(
                EngineConfig(model=args.judge_model, batch_size=engine.batch_size)
            )
    kept, rejected = paraphrase(dataset, engine, config, checkpointer=checkpointer, judge=judge)
    summary = {
        "rows": len(dataset),
        "paraphrases": len(kept) + len(rejected),
        "kept": len(kept),
        "rejected": len(rejected),
        "engine": engine.stats.to_dict(),
    }
    paths = save_run(args.output, kept, rejected, summary=summary, config={"paraphrase": to_dict(config)})
    print(
        f"\nParaphrased {len(dataset)} rows: {len(kept)} kept, {len(rejected)} rejected -> {paths['dataset']}"
    )
    _print_rows(kept.to_list(), 2)
    return 0


def _cmd_negatives(args: argparse.Namespace) -> int:
    from .augment import NEGATIVE_KINDS, NegativeConfig, preference_pairs
    from .checkpoint import Checkpointer
    from .io import load_seed_dataset, save_run
    from .rows import fingerprint_rows

    kinds = [k.strip() for k in args.kinds.split(",")] if args.kinds else list(NEGATIVE_KINDS)
    config = NegativeConfig(kinds=kinds, seed=args.seed)
    dataset = load_seed_dataset(args.input)
    checkpointer = Checkpointer(Path(args.output) / "checkpoints")
    engine = _engine_from_args(args)
    checkpointer.bind(
        {"config": to_dict(config), "model": engine.model_id, "input": fingerprint_rows(dataset)},
        overwrite=args.overwrite,
    )
    pairs, rejected = preference_pairs(dataset, engine, config, checkpointer=checkpointer)
    summary = {
        "rows": len(dataset),
        "pairs": len(pairs),
        "rejected": len(rejected),
        "kinds": dict(sorted(Counter(pairs["negative_kind"]).items())),
    }
    paths = save_run(args.output, pairs, rejected, summary=summary, config={"negatives": to_dict(config)})
    print(f"\n{len(pairs)} preference pairs ({len(rejected)} rejected) -> {paths['dataset']}")
    print("  train with: python scripts/dpo.py --dataset " + str(args.output) + " --output_dir dpo-out")
    return 0


def _cmd_blend(args: argparse.Namespace) -> int:
    from .augment import blend
    from .io import load_seed_dataset, save_run

    sources = {name: load_seed_dataset(path) for name, path in _pairs(args.source, "--source").items()}
    mixed, summary = blend(
        sources,
        ratios=_pairs(args.ratio, "--ratio", float) or None,
        counts=_pairs(args.count, "--count", int) or None,
        total=args.total,
        dedup=not args.no_dedup,
        seed=args.seed,
    )
    save_run(args.output, mixed, summary={"sources": summary, "rows": len(mixed)})
    print(f"\nBlended {len(mixed)} rows:")
    print("  source               available   asked  selected   share")
    for row in summary:
        print(
            f"  {row['source']:<20} {row['available']:9d} {row['asked']:7d} {row['selected']:9d}  {row['share']:6.1%}"
        )
    return 0


def _engine_from_args(args: argparse.Namespace):
    from .engine import GenerationEngine

    overrides = _overrides(
        args, {"model": "model", "batch_size": "batch_size", "device": "device", "dtype": "dtype"}
    )
    return GenerationEngine.from_config(from_dict(EngineConfig, overrides, "engine"))


def _cmd_slots(args: argparse.Namespace) -> int:
    from .augment import fill_template, propose_slot_values, template_slots
    from .io import save_run

    slots = template_slots(args.template)
    given = {
        k: [v.strip() for v in vals.split("|") if v.strip()]
        for k, vals in _pairs(args.values, "--values").items()
    }
    unknown = sorted(set(given) - set(slots))
    if unknown or not slots:
        raise ValueError(
            f"Template slots are {', '.join(slots) or 'none'}; --values named {', '.join(unknown)}"
        )
    engine = _engine_from_args(args)
    if set(slots) - set(given):
        proposed = propose_slot_values(args.template, engine, count=args.count)
        given = {**proposed, **given}
    rows = fill_template(args.template, given, engine, num=args.num, seed=args.seed)
    save_run(args.output, rows, summary={"template": args.template, "slot_values": given, "rows": len(rows)})
    print(f"\n{len(rows)} instructions from the template; slot values:")
    for slot, values in given.items():
        print(f"  [{slot}]: {', '.join(values)}")
    _print_rows(rows.to_list(), 2)
    return 0


def _cmd_backtranslate(args: argparse.Namespace) -> int:
    from .augment import back_translate
    from .checkpoint import Checkpointer
    from .io import load_seed_dataset, save_run
    from .rows import fingerprint_rows

    dataset = load_seed_dataset(args.input)
    engine = _engine_from_args(args)
    checkpointer = Checkpointer(Path(args.output) / "checkpoints")
    checkpointer.bind(
        {"pivot": args.pivot, "model": engine.model_id, "input": fingerprint_rows(dataset)},
        overwrite=args.overwrite,
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
    )
    reasons = Counter(r for row in rejected["filter_reasons"] for r in row)
    save_run(
        args.output,
        kept,
        rejected,
        summary={"rows": len(dataset), "kept": len(kept), "rejected": dict(reasons)},
    )
    print(
        f"\nBack-translated {len(dataset)} instructions via {args.pivot}: {len(kept)} kept; rejected: {dict(reasons)}"
    )
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from datasets import load_from_disk

    path = Path(args.path)
    if (path / "dataset").is_dir():
        path = path / "dataset"
    dataset = load_from_disk(str(path))
    print(f"{path}: {len(dataset)} rows, columns: {', '.join(dataset.column_names)}")
    _print_rows(dataset.select(range(min(args.n, len(dataset)))).to_list(), args.n)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger.setLevel(args.log_level)
    commands = {
        "self-instruct": _cmd_self_instruct,
        "evol-instruct": _cmd_evol_instruct,
        "filter": _cmd_filter,
        "report": _cmd_report,
        "push": _cmd_push,
        "paraphrase": _cmd_paraphrase,
        "negatives": _cmd_negatives,
        "blend": _cmd_blend,
        "slots": _cmd_slots,
        "backtranslate": _cmd_backtranslate,
        "show": _cmd_show,
    }
    try:
        return commands[args.command](args)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as err:  # HubPushError is a RuntimeError
        if args.log_level == "DEBUG":
            raise
        print(f"hf-synth: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = ["main"]
