"""``hf-synth refine``: the closed loop (generate, fine-tune, evaluate, target)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..configuration import add_options
from ..refine.refine_config import RefineConfig
from .common import parse_config
from .options import Command, add_checkpoint_args, add_engine_args

logger = logging.getLogger("hf_synth")


def refine_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seeds", "--input", dest="seeds", help="Seed tasks (default: hf-synth's example seeds)"
    )
    parser.add_argument("--split", help="Split of the seed dataset")
    parser.add_argument(
        "--eval", required=True, help="Held-out tasks with reference outputs (file, folder or Hub id)"
    )
    parser.add_argument("--output", required=True, help="Output folder (every round's data, student, scores)")
    parser.add_argument("--config", help="YAML file with 'engine:' and 'refine:' sections")
    parser.add_argument(
        "--max-new-tokens", type=int, help="Token limit for generated instructions and instances"
    )
    add_options(parser.add_argument_group("refine"), RefineConfig)
    add_checkpoint_args(parser)
    add_engine_args(parser)


def cmd_refine(args: argparse.Namespace) -> int:
    engine_config, config = parse_config(
        args,
        "refine",
        RefineConfig,
        sampling=("generation.instruction_sampling", "generation.instance_sampling"),
    )
    # The configuration is valid: now what reads data and loads models.
    from ..engine import load_engine
    from ..io import load_seed_dataset
    from ..refine import Refine, eval_rows

    seeds = load_seed_dataset(args.seeds, split=args.split)
    eval_set = load_seed_dataset(args.eval)
    eval_rows(eval_set)  # an evaluation set without references fails before a model loads
    teacher = load_engine(engine_config)
    result = Refine(teacher, config, args.output, overwrite=args.overwrite).run(seeds, eval_set)
    report = result.report
    _write_card(args, result, teacher, config)
    print(
        f"\nRefine: {report['stopped']}; best round {report['best_round']} (ROUGE-L {report['best_rouge_l']:.4f})"
    )
    print("  round  ROUGE-L  rows added  rows total  decision")
    for entry in report["rounds"]:
        added = entry.get("generation", {}).get("added", "")
        print(
            f"  {entry['round']:5d}  {entry['eval']['rouge_l']:.4f}  {added!s:>10}  "
            f"{entry.get('accumulated_rows', '')!s:>10}  {entry['decision']}"
        )
    print(f"  report: {args.output}/refine_report.html, {args.output}/refine_report.json")
    print(f"  best student: {report['best_student']}")
    return 0


REFINE = Command(
    "refine",
    "The closed loop: generate, fine-tune a student, evaluate it, target its weak skills",
    refine_args,
    cmd_refine,
    inputs=("seeds", "eval"),
)


def _write_card(args: argparse.Namespace, result, teacher, config) -> None:
    """The dataset card of the loop's accumulated training data (``--output``/README.md): the rounds, the
    rows dropped per reason (decontamination per evaluation set among them) and the learnability figures."""
    from datasets import Dataset, load_from_disk

    report = result.report
    reasons: list[list[str]] = []
    steps = [
        f"Seeds: `{args.seeds}`; evaluation tasks: `{args.eval}` ({report['eval_rows']} rows), never shown "
        "to generation.",
        f"Each round generated rows with Self-Instruct (teacher `{report['teacher']}`)"
        + (
            f", steered toward the {config.focus_k} skills the student's last evaluation found weakest"
            if config.focus_k
            else ", untargeted"
        )
        + "; rows overlapping an evaluation instruction or an earlier round were dropped.",
        f"Decontamination against the evaluation file ({report['decontamination']['ngram']}-grams of its "
        "instructions, inputs and references), rows dropped per set: "
        + (", ".join(f"`{k}` {v}" for k, v in report["decontamination"]["dropped_per_set"].items()) or "none")
        + ".",
        f"Selection: {report['selection']}.",
    ]
    for entry in report["rounds"][1:]:
        folder = Path(args.output) / f"round-{entry['round']}" / "rejected"
        if folder.is_dir():
            reasons.extend(load_from_disk(str(folder))["refine_reasons"])
        learn = entry["generation"].get("learnability")
        if learn:
            steps.append(
                f"Round {entry['round']} learnability (student `{learn['student']}`): kept {learn['kept']} of "
                f"{learn['candidates']} candidates; mean gap of the kept rows {learn.get('mean_gap_kept')}, of "
                f"all candidates {learn.get('mean_gap_candidates')}; {learn['below_quality_floor']} below "
                "the teacher-quality floor. The rows' `scores` hold learnability_gap, "
                "learnability_student_rouge_l and learnability_teacher_quality."
            )
    steps.append(
        f"{report['stopped']}; best round {report['best_round']} (evaluation ROUGE-L "
        f"{report['best_rouge_l']:.4f}); every round's scores are in refine_report.json / .html."
    )
    from ..results import StepResult
    from ..run_folder import RunFolder

    card = StepResult(
        (result.dataset,),
        dataset=result.dataset,
        summary={},
        diversity=report.get("diversity") or False,  # the report's figures, not computed again
        method="refine",
        tags=["refine"],
        steps=steps,
        rejected=Dataset.from_dict({"filter_reasons": reasons}) if reasons else None,
        engines=[teacher.describe()],
        settings={
            "rounds": config.rounds,
            "instructions_per_round": config.instructions_per_round,
            "focus_k": config.focus_k,
            "learnability": config.learnability,
            "learnability_candidates": config.learnability_candidates,
            "learnability_min_teacher_quality": config.learnability_min_teacher_quality,
            "overlap_threshold": config.overlap_threshold,
        },
    ).card()
    RunFolder(args.output).write_card(card)
