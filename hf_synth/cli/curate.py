"""``hf-synth filter`` and ``hf-synth report``."""

from __future__ import annotations

import argparse
import json
import logging
from collections import Counter
from pathlib import Path

from ..configuration import load_yaml
from ..results import run_diversity
from ..run_folder import RunFolder
from .common import checkpoint_args, print_summary_counts
from .options import Command, add_checkpoint_args

logger = logging.getLogger("hf_synth")


def filter_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="Dataset file, folder, hf-synth run folder or Hub id")
    parser.add_argument("--split", help="Split of the input dataset")
    parser.add_argument("--config", required=True, help="YAML file with a 'filters:' list")
    parser.add_argument(
        "--output", required=True, help="Output folder (kept rows; dropped rows in rejected.jsonl)"
    )
    add_checkpoint_args(parser)


def cmd_filter(args: argparse.Namespace) -> int:
    from ..filters import resolve_filters
    from ..filters.filter_step import filter_dataset
    from ..io import load_seed_dataset

    config = load_yaml(args.config)
    unknown = sorted(set(config) - {"filters"})
    if unknown or not isinstance(config.get("filters"), list):
        raise ValueError(
            f"{args.config} must hold a 'filters:' list (unknown keys: {', '.join(unknown) or 'none'})"
        )
    resolve_filters(config["filters"])  # bad specs fail before anything is loaded
    dataset = load_seed_dataset(args.input, split=args.split, allow_empty=True)
    result = filter_dataset(
        dataset,
        config["filters"],
        source=args.input,
        **checkpoint_args(args),
    )
    paths = result.save(args.output)
    kept, dropped = result
    summary = result.summary
    print(
        f"\nFiltered {len(dataset)} rows in {summary['seconds']}s: kept {len(kept)}, dropped {len(dropped)}"
    )
    print_summary_counts(summary["reasons"])
    print(f"  kept: {paths['dataset']}, {paths['jsonl']}; dropped: {paths['rejected']}")
    return 0


FILTER = Command(
    "filter",
    "Score and filter any dataset (ROUGE novelty, near-duplicates, length, ...)",
    filter_args,
    cmd_filter,
    inputs=("input",),
)


def report_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", help="hf-synth run folder, dataset file or folder, or Hub id")
    parser.add_argument("--input", help="The same as PATH")
    parser.add_argument("--split", help="Split of the input dataset")
    parser.add_argument("--column", default="instruction", help="Column to classify (default: instruction)")
    parser.add_argument("--taxonomy", help="YAML file 'skill: description' (default: hf-synth's skills)")
    parser.add_argument(
        "--skill-examples",
        help="JSONL of labelled instructions ({instruction, skill}) to fit the skill classifier on "
        "(default: hf-synth's examples for its taxonomy)",
    )
    parser.add_argument(
        "--embedding-model", help="sentence-transformers model (default: packaged all-MiniLM-L6-v2)"
    )
    parser.add_argument(
        "--out", "--output", dest="out", help="Write the report here: .html (plots) or .json (numbers)"
    )
    parser.add_argument(
        "--seeds", help="Seed file/folder: plot each instruction's ROUGE-L to its nearest seed"
    )
    parser.add_argument(
        "--compare",
        nargs="+",
        metavar="RUN",
        help="Print the diversity figures of these run folders (or datasets) side by side, one column each",
    )


def cmd_report(args: argparse.Namespace) -> int:
    from ..curation import classify_skills, coverage_report, load_taxonomy, skill_labeller
    from ..filters import reason_key
    from ..io import load_seed_dataset

    if args.compare:
        return _compare(args)
    source = args.path or args.input
    if not source:
        raise ValueError("Name the dataset to report on: hf-synth report PATH (or --input PATH).")
    taxonomy = load_taxonomy(args.taxonomy)
    dataset = load_seed_dataset(source, split=args.split)
    if args.skill_examples:
        from ..curation import load_labelled

        labels = set(load_labelled(args.skill_examples)[1])
        if args.taxonomy is None:  # the taxonomy is what the examples label
            taxonomy = {skill: skill.replace("_", " ") for skill in sorted(labels)}
    run = RunFolder(source)
    rejected = run.read_rejected()
    labelling = {
        "taxonomy": taxonomy if args.taxonomy or args.skill_examples else None,
        "model": args.embedding_model,
        "examples": args.skill_examples,
    }
    report = coverage_report(
        classify_skills(dataset, args.column, **labelling), taxonomy, labeller=skill_labeller(**labelling)
    )
    drops = rejected if rejected is not None else dataset
    for column in ("filter_reasons", "elimination_reasons"):
        if column in drops.column_names:
            report["filter_reasons"] = dict(
                Counter(reason_key(r) for row in drops[column] for r in row).most_common()
            )
            break
    print(f"\n{report['rows']} rows, skill coverage (skills labelled by {report['labeller']}):")
    for name, row in sorted(report["skills"].items(), key=lambda kv: -kv[1]["count"]):
        print(f"  {row['count']:6d}  {row['share']:6.1%}  {'#' * round(row['share'] * 50):<25} {name}")
    print(f"  missing: {', '.join(report['missing']) or 'none'}")
    if report["under_covered"]:
        print(f"  under-covered: {', '.join(report['under_covered'])}")
        focus = ",".join(report["under_covered"][:4])
        print(f"  steer the next run: hf-synth self-instruct ... --focus-skills {focus}")
    for reason, count in report.get("filter_reasons", {}).items():
        print(f"  dropped {count:5d}  {reason}")
    seed_texts = _seed_texts(args)
    report["diversity"] = run_diversity(dataset, seeds=seed_texts)
    if report["diversity"]:
        print("  diversity: " + ", ".join(_diversity_cells(report["diversity"])))
    review = _review_figures(run, dataset, rejected)
    if review:
        from ..review.apply import figures_lines

        report["review"] = review
        for line in figures_lines(review):
            print(f"  {line}")
    if args.out and args.out.endswith((".html", ".htm")):
        from ..report import write_report

        write_report(
            args.out,
            dataset,
            rejected=rejected,
            seeds=seed_texts,
            diversity=report["diversity"],
            coverage=report,
            review=review,
            title=f"hf-synth report: {source}",
        )
        print(f"  report: {args.out}")
    elif args.out:
        Path(args.out).write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


REPORT = Command(
    "report",
    "Skill coverage, filter statistics and an HTML quality report",
    report_args,
    cmd_report,
    inputs=("path", "input", "seeds"),
)


def _seed_texts(args: argparse.Namespace) -> list[str] | None:
    if not args.seeds:
        return None
    from ..io import load_seed_dataset

    seed_data = load_seed_dataset(args.seeds)
    return [t for t in seed_data[args.column] if t] if args.column in seed_data.column_names else None


def _diversity_cells(diversity: dict) -> list[str]:
    from ..curation.diversity import DIVERSITY_FIELDS

    return [f"{k} {diversity[k]}" for k in DIVERSITY_FIELDS[1:] if diversity.get(k) is not None]


def _compare(args: argparse.Namespace) -> int:
    """``hf-synth report --compare A B ...``: the diversity figures of each run side by side (from its
    summary.json when the run recorded them, else computed from its rows)."""
    from ..curation.diversity import comparison_table
    from ..io import load_seed_dataset

    seeds = _seed_texts(args)
    runs: dict[str, dict] = {}
    for source in args.compare:
        recorded = RunFolder(source).read_summary()
        if recorded.get("diversity") and not seeds:
            runs[source] = recorded["diversity"]
            continue
        numbers = run_diversity(load_seed_dataset(source, split=args.split, allow_empty=True), seeds=seeds)
        if numbers is None:
            raise ValueError(f"{source} has no 'instruction' column: nothing to compare.")
        runs[source] = numbers
    print(comparison_table(runs))
    references = {r.get("rouge_l_reference") for r in runs.values()} - {None}
    if references:
        print("ROUGE-L shares against: " + "; ".join(sorted(references)))
    if args.out:
        Path(args.out).write_text(json.dumps(runs, indent=2), encoding="utf-8")
    return 0


def _review_figures(run: RunFolder, dataset, rejected) -> dict | None:
    """The human review's figures: from the run's summary.json when ``hf-synth review --apply`` wrote it,
    else recomputed from the ``review`` column; None when nobody reviewed the rows."""
    review = run.read_summary().get("review") if run.path.is_dir() else None
    if review:
        return review
    if "review" not in dataset.column_names:
        return None
    from ..review.apply import figures_from_rows

    rows = dataset.to_list() + (rejected.to_list() if rejected is not None else [])
    figures = figures_from_rows(rows)
    return figures if figures["reviewed"] else None
