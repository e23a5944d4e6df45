"""``hf-synth refine``: the closed loop (generate, fine-tune, evaluate, target)."""

from __future__ import annotations

import argparse
import logging

from ..configuration import from_dict, given_options
from .common import load_engine, load_sections

logger = logging.getLogger("hf_synth")


def cmd_refine(args: argparse.Namespace) -> int:
    from ..refine import RefineConfig

    engine_config, data = load_sections(args, "refine")
    data.update(given_options(args, RefineConfig))
    if args.max_new_tokens is not None:
        generation = dict(data.get("generation", {}))
        for step in ("instruction_sampling", "instance_sampling"):
            generation[step] = {**generation.get(step, {}), "max_new_tokens": args.max_new_tokens}
        data["generation"] = generation
    config = from_dict(RefineConfig, data, "refine")
    # The configuration is valid: now what reads data and loads models.
    from ..io import load_seed_dataset
    from ..refine import Refine, eval_rows

    seeds = load_seed_dataset(args.seeds, split=args.split)
    eval_set = load_seed_dataset(args.eval)
    eval_rows(eval_set)  # an evaluation set without references fails before a model loads
    teacher = load_engine(args, engine_config)
    result = Refine(teacher, config, args.output, overwrite=args.overwrite).run(seeds, eval_set)
    report = result.report
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
