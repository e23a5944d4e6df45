"""Whole runs against the engine: does a pipeline keep the engine as busy as a single engine call does?

In one run of this script, each in its own process:

1. the engine alone: ``bench/bench_throughput.py``'s hf-synth worker (128 mixed prompts, 256 new tokens);
2. the pipeline: Self-Instruct from the seed tasks to ``--num-instructions`` kept instructions with
   instances, then Evol-Instruct (``--evol-rounds`` rounds, judged and answered) on the first
   ``--evol-rows`` of them, with checkpoints in a temporary folder as the CLI keeps them.

Prints wall time, generated tokens, end-to-end tok/s (all tokens the pipeline generated over its wall
time after the model was loaded), the ratio to the engine's tok/s measured in the same run, and kept rows
per minute; writes ``bench/results/pipeline.json``. The seeds are the 175 Self-Instruct seed tasks in
``../shared/data`` when that folder is there, else the project's own (a note says so).

    python bench/bench_pipeline.py [--num-instructions 500 --evol-rows 200] [--isa avx2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_pipeline(args) -> dict:
    sys.path.insert(0, str(HERE))
    from datasets import Dataset
    from workload import seed_rows

    from hf_synth import EvolInstruct, EvolInstructConfig, SelfInstruct, SelfInstructConfig
    from hf_synth.engine import EngineConfig, load_engine

    seeds = Dataset.from_list(seed_rows())
    engine = load_engine(EngineConfig(batch_size=args.slots))
    folder = Path(tempfile.mkdtemp(prefix="hf_synth_bench_pipeline_"))
    started = time.perf_counter()
    si_config = SelfInstructConfig(
        num_instructions=args.num_instructions, max_rounds=args.max_rounds, seed=args.seed
    )
    si = SelfInstruct(engine, si_config, checkpoint_dir=folder / "si").run(seeds)
    si_seconds = time.perf_counter() - started
    si_tokens = engine.stats.completion_tokens
    roots = si.dataset.select(range(min(args.evol_rows, len(si.dataset)))).select_columns(
        ["id", "instruction"]
    )
    evol_config = EvolInstructConfig(rounds=args.evol_rounds, seed=args.seed)
    evol = EvolInstruct(engine, evol_config, checkpoint_dir=folder / "evol").run(roots)
    seconds = time.perf_counter() - started
    tokens = engine.stats.completion_tokens
    return {
        "seconds": seconds,
        "tokens": tokens,
        "engine_seconds": engine.stats.seconds,
        "self_instruct": {
            "seconds": si_seconds,
            "tokens": si_tokens,
            "kept": len(si.dataset),
            "rejected": len(si.rejected),
            "rounds": si.summary.rounds,
        },
        "evol_instruct": {
            "seconds": seconds - si_seconds,
            "tokens": tokens - si_tokens,
            "kept": len(evol.dataset),
            "rejected": len(evol.rejected),
        },
        "kept": len(si.dataset) + len(evol.dataset),
    }


def spawn(command: list[str], env: dict) -> dict:
    print("$", " ".join(command), flush=True)
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{command[1]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-instructions", type=int, default=500)
    parser.add_argument("--max-rounds", type=int, default=200)
    parser.add_argument("--evol-rows", type=int, default=200)
    parser.add_argument("--evol-rounds", type=int, default=2)
    parser.add_argument("--slots", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--isa", choices=["native", "avx2"], default="native")
    parser.add_argument("--skip-engine", action="store_true", help="only the pipeline (no ratio)")
    parser.add_argument("--out", default=str(HERE / "results" / "pipeline.json"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(run_pipeline(args)), flush=True)
        return

    sys.path.insert(0, str(HERE))
    from bench_throughput import isa_environment, machine_report

    env = {**isa_environment(args.isa), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cpu = machine_report(env)
    print(
        f"CPU: {cpu['model']}, used {cpu['used_isa']}, matmul {cpu['matmul_2048_gflops']} GFLOP/s", flush=True
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    engine = None
    if not args.skip_engine:
        out = Path(args.out).with_name("pipeline_engine.json")
        command = [sys.executable, str(HERE / "bench_throughput.py"), "--engines", "hf_synth"]
        subprocess.run(
            [*command, "--out", str(out), "--isa", args.isa], env=env, check=True, capture_output=True
        )
        engine = json.loads(out.read_text())["results"]["hf_synth"]
        print(
            f"engine alone: {engine['tokens']} tokens in {engine['seconds']:.1f}s = {engine['tok_s']:.1f} tok/s"
        )
    command = [
        sys.executable,
        __file__,
        "--worker",
        f"--num-instructions={args.num_instructions}",
        f"--max-rounds={args.max_rounds}",
        f"--evol-rows={args.evol_rows}",
        f"--evol-rounds={args.evol_rounds}",
        f"--seed={args.seed}",
    ]
    if args.slots:
        command.append(f"--slots={args.slots}")
    pipeline = spawn(command, env)
    tok_s = pipeline["tokens"] / pipeline["seconds"]
    ratio = tok_s / engine["tok_s"] if engine else None
    report = {
        "command": "python bench/bench_pipeline.py " + " ".join(sys.argv[1:]),
        "cpu": cpu,
        "engine": engine,
        "pipeline": pipeline,
        "end_to_end_tok_s": round(tok_s, 1),
        "ratio_to_engine": round(ratio, 3) if ratio else None,
        "kept_rows_per_minute": round(pipeline["kept"] / pipeline["seconds"] * 60, 1),
    }
    Path(args.out).write_text(json.dumps(report, indent=2))
    si, evol = pipeline["self_instruct"], pipeline["evol_instruct"]
    print(f"\n{cpu['model']}, {cpu['used_isa']}, matmul {cpu['matmul_2048_gflops']} GFLOP/s")
    print("| part | wall s | tokens | tok/s | kept | kept/min |")
    print("|---|---|---|---|---|---|")
    for name, part in (("Self-Instruct", si), ("Evol-Instruct", evol)):
        print(
            f"| {name} | {part['seconds']:.1f} | {part['tokens']} | {part['tokens'] / part['seconds']:.1f} | "
            f"{part['kept']} | {part['kept'] / part['seconds'] * 60:.1f} |"
        )
    print(
        f"| **whole run** | {pipeline['seconds']:.1f} | {pipeline['tokens']} | **{tok_s:.1f}** | "
        f"{pipeline['kept']} | {report['kept_rows_per_minute']} |"
    )
    if engine:
        print(
            f"\nengine alone {engine['tok_s']:.1f} tok/s; end-to-end / engine = **{ratio:.2f}** (target 0.70)"
        )


if __name__ == "__main__":
    main()
