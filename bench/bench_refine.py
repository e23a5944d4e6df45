"""The closed loop on real data: does fine-tuning on generated data help the student on real tasks?

From the 175 Self-Instruct seed tasks, with the embedded SmolLM2-135M-Instruct as teacher and as student,
evaluated on the 252 user-oriented instructions of the Self-Instruct repository (kept out of generation;
evaluation tasks whose instruction overlaps a seed at ROUGE-L >= 0.7 are removed first and counted):
``--rounds`` rounds of generate (Self-Instruct, ``--per-round`` instructions) -> fine-tune (TRL SFT, full
weights) -> evaluate (greedy answers, ROUGE-L F to the reference, overall and per skill). Prints the CPU,
the table of ROUGE-L per round (overall and per skill), rows, tokens and wall time per step; the run's
folder keeps everything (``refine_report.html``).

    python bench/bench_refine.py [--rounds 3 --per-round 100 --out bench/results/refine]

Needs ``../shared/data`` beside the checkout (says so and exits 0 without it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-round", type=int, default=100)
    parser.add_argument("--eval-max-new-tokens", type=int, default=128)
    parser.add_argument("--out", default=str(HERE / "results" / "refine"))
    args = parser.parse_args()
    if not (DATA / "user_oriented_instructions.jsonl").is_file():
        print(f"note: {DATA} is not there; this benchmark needs the real seed and evaluation tasks")
        return
    sys.path.insert(0, str(HERE))
    from bench_throughput import isa_environment, machine_report
    from datasets import Dataset

    from hf_synth import Refine, RefineConfig, load_engine, load_seed_dataset
    from hf_synth.engine import EngineConfig
    from hf_synth.filters import RougeLIndex
    from hf_synth.refine import eval_rows

    cpu = machine_report(isa_environment("native"))
    print(
        f"CPU: {cpu['model']}, used {cpu['used_isa']}, matmul {cpu['matmul_2048_gflops']} GFLOP/s", flush=True
    )
    seeds = load_seed_dataset(DATA / "self_instruct_seed_tasks.jsonl")
    rows = eval_rows(load_seed_dataset(DATA / "user_oriented_instructions.jsonl"))
    index = RougeLIndex(seeds["instruction"])
    kept = [r for r in rows if index.best_match(r["instruction"], stop_at=0.7).score < 0.7]
    print(
        f"evaluation: {len(kept)} of {len(rows)} user-oriented tasks ({len(rows) - len(kept)} overlap a seed)"
    )
    config = RefineConfig(
        rounds=args.rounds,
        instructions_per_round=args.per_round,
        patience=args.rounds,  # run every round: the table is the point
        eval_max_new_tokens=args.eval_max_new_tokens,
    )
    started = time.perf_counter()
    teacher = load_engine(EngineConfig())
    result = Refine(teacher, config, args.out).run(seeds, Dataset.from_list(kept))
    report = result.report
    wall = time.perf_counter() - started
    skills = sorted(report["rounds"][0]["eval"]["per_skill"])
    counts = report["eval_rows_per_skill"]
    print(
        f"\n{cpu['model']}, {cpu['used_isa']}, matmul {cpu['matmul_2048_gflops']} GFLOP/s; wall {wall:.0f}s\n"
    )
    print("| round | ROUGE-L | " + " | ".join(f"{s} ({counts[s]})" for s in skills) + " |")
    print("|---" * (len(skills) + 2) + "|")
    for entry in report["rounds"]:
        per = entry["eval"]["per_skill"]
        print(
            f"| {entry['round']} | **{entry['eval']['rouge_l']:.4f}** | "
            + " | ".join(f"{per.get(s, 0):.3f}" for s in skills)
            + " |"
        )
    print(
        "\n| round | rows added | rows total | generate tokens | generate s | train steps | train loss | train s | eval tokens | eval s | decision |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for entry in report["rounds"]:
        g, t, e = entry.get("generation", {}), entry.get("training", {}), entry["eval"]
        print(
            f"| {entry['round']} | {g.get('added', '')} | {entry.get('accumulated_rows', '')} | {g.get('tokens', '')} | "
            f"{g.get('seconds', '')} | {t.get('steps', '')} | {t.get('train_loss', '')} | {t.get('seconds', '')} | "
            f"{e['tokens']} | {e['seconds']} | {entry['decision']} |"
        )
    print(f"\n{report['stopped']}; best round {report['best_round']}")
    (Path(args.out) / "bench.json").write_text(
        json.dumps({"cpu": cpu, "wall_seconds": wall, "report": report}, indent=2)
    )


if __name__ == "__main__":
    main()
