"""Diversity of the generation methods side by side, at equal size, on the 175 Self-Instruct seed tasks.

Every step is the CLI command a user would type (``python -m hf_synth.cli ...``), with the embedded default
teacher (SmolLM2-135M-Instruct on the CPU):

1. ``paraphrase`` of the first ``--roots`` seeds' instructions (``--k 1``);
2. ``self-instruct`` from all the seeds to ``--rows`` kept instructions;
3. ``evol-instruct --no-judge`` of the first ``--evol-roots`` seeds, ``--evol-rounds`` rounds (the kept
   evolutions of every round: an eliminated evolution's parent is evolved again next round; about a fifth
   of the 135M teacher's evolutions survive elimination);
4. ``backtranslate`` of the same seeds as paraphrase (through French, with the same teacher; not with
   ``--skip back-translation``);
5. ``blend`` of the four generated outputs, equal ratios;
   (the seed tasks are first written as flat ``instruction``/``input``/``output`` rows, their first
   instance, the form ``blend`` and the other steps read);
6. every output, and the seeds themselves as a reference, cut to the same number of rows with
   ``blend --count`` (a random sample of one source), then ``report --compare ... --seeds`` on the cuts.

The equal size is ``--rows``, or the fewest rows a method produced when one produced fewer (said in the
output); a method that kept fewer than ``--min-rows`` is left out of the blend and the table, with its
count in the output. Resumable: a step whose folder has a ``summary.json`` is not run again; one with checkpoints
continues with ``--resume``. Logs of each step are in ``OUT/logs/``; the table, the figures and the machine
are in ``OUT/bench_diversity.json``.

    HF_HUB_OFFLINE=1 nice -n 19 .venv/bin/python bench/bench_diversity.py [--rows 40] [--out runs/bench_diversity]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_SEEDS = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "self_instruct_seed_tasks.jsonl"
)
METHODS = ("self-instruct", "evol-instruct", "paraphrase", "back-translation", "blend")


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_step(name: str, folder: Path, args: list[str], logs: Path, *, resumable: bool = True) -> float:
    """Run ``hf-synth ARGS --output FOLDER`` unless FOLDER already holds a finished run; returns seconds."""
    if (folder / "summary.json").is_file():
        print(f"[{name}] done already: {folder}", flush=True)
        return 0.0
    command = [sys.executable, "-m", "hf_synth.cli", *args, "--output", str(folder)]
    if resumable and (folder / "checkpoints").is_dir():
        command.append("--resume")
    print(f"[{name}] {' '.join(command[1:])}", flush=True)
    start = time.perf_counter()
    with open(logs / f"{name}.log", "a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
    seconds = time.perf_counter() - start
    if code:
        raise SystemExit(f"[{name}] failed (exit {code}); see {logs / f'{name}.log'}")
    print(f"[{name}] {seconds:.0f} s", flush=True)
    return seconds


def rows_of(folder: Path) -> int:
    path = folder / "data.jsonl"
    with open(path, encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seeds", default=str(DEFAULT_SEEDS), help="Seed tasks (default: ../shared/data's 175)"
    )
    parser.add_argument("--rows", type=int, default=40, help="Rows per method in the table (default 40)")
    parser.add_argument(
        "--roots",
        type=int,
        default=50,
        help="Seeds given to paraphrase and backtranslate, the first N (default 50; 0: all)",
    )
    parser.add_argument(
        "--evol-roots",
        type=int,
        default=60,
        help="Seeds given to evol-instruct, the first N (default 60; 0: all)",
    )
    parser.add_argument("--evol-rounds", type=int, default=1, help="Evol-Instruct rounds (default 1)")
    parser.add_argument(
        "--min-rows",
        type=int,
        default=10,
        help="A method that kept fewer rows is left out of the blend and the table (default 10)",
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed of the equal-size samples (default 0)")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["back-translation"],
        help="Do not run this method (repeatable): it is left out of the blend and the table, and said so",
    )
    parser.add_argument(
        "--out", default="runs/bench_diversity", help="Folder of the runs (reused when resumed)"
    )
    args = parser.parse_args()

    seeds = Path(args.seeds).resolve()
    if not seeds.is_file():
        raise SystemExit(f"Seed file {seeds} not found; pass --seeds (the 175 Self-Instruct seed tasks).")
    out = Path(args.out)
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    started = {"uptime": uptime(), "time": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    print(f"start: {started['uptime']}", flush=True)
    seconds: dict[str, float] = {}

    # The seed tasks as flat rows (instruction, input, output: their first instance), the form blend reads;
    # --roots keeps the first N of them for the methods that rework given rows.
    flat = out / "seeds.jsonl"
    tasks = [json.loads(line) for line in seeds.read_text(encoding="utf-8").splitlines() if line.strip()]
    with open(flat, "w", encoding="utf-8") as f:
        for task in tasks:
            instance = (task.get("instances") or [{}])[0]
            row = {
                "instruction": task["instruction"],
                "input": instance.get("input", ""),
                "output": instance.get("output", ""),
            }
            f.write(json.dumps(row) + "\n")

    def first(n: int) -> str:
        if not n:
            return str(flat)
        path = out / f"seeds-first-{n}.jsonl"
        path.write_text(
            "".join(flat.read_text(encoding="utf-8").splitlines(keepends=True)[:n]), encoding="utf-8"
        )
        return str(path)

    roots, evol_roots = first(args.roots), first(args.evol_roots)

    raw = out / "raw"
    # the cheap steps first
    seconds["paraphrase"] = run_step(
        "paraphrase", raw / "paraphrase", ["paraphrase", "--input", roots, "--k", "1"], logs
    )
    for name in args.skip:
        print(f"[{name}] skipped (--skip)", flush=True)
    seconds["self-instruct"] = run_step(
        "self-instruct",
        raw / "self-instruct",
        ["self-instruct", "--seeds", str(seeds), "--num-instructions", str(args.rows), "--show", "0"],
        logs,
    )
    seconds["evol-instruct"] = run_step(
        "evol-instruct",
        raw / "evol-instruct",
        # --no-judge: the embedded 135M judge fails its self-check, so its verdicts would be recorded but
        # eliminate nothing; without it the rules eliminate the same rows, minus 4 judge prompts per
        # evolution.
        [
            "evol-instruct",
            "--input",
            evol_roots,
            "--rounds",
            str(args.evol_rounds),
            "--no-judge",
            "--show",
            "0",
        ],
        logs,
    )
    # the dearest per kept row last (with the 135M teacher it keeps almost nothing: it cannot translate)
    if "back-translation" not in args.skip:
        seconds["back-translation"] = run_step(
            "back-translation", raw / "back-translation", ["backtranslate", "--input", roots], logs
        )
    # A method that kept fewer than --min-rows rows cannot be compared at a useful size: it is left out of
    # the blend and the table (and said so), rather than shrinking every other column to its size.
    available = {name: rows_of(raw / name) for name in METHODS if name not in ("blend", *args.skip)}
    too_few = {name: n for name, n in available.items() if n < args.min_rows}
    for name, n in too_few.items():
        print(f"{name} kept {n} rows (< --min-rows {args.min_rows}): left out of the blend and the table.")
    generated = [name for name in available if name not in too_few]
    blend_args = ["blend", "--total", str(args.rows), "--seed", str(args.seed)]
    for name in generated:
        blend_args += ["--source", f"{name}={raw / name}", "--ratio", f"{name}={1 / len(generated):.6f}"]
    seconds["blend"] = run_step("blend", raw / "blend", blend_args, logs, resumable=False)
    available["blend"] = rows_of(raw / "blend")
    compared = ["seeds", *generated, "blend"]
    size = min([args.rows, *(available[name] for name in compared[1:])])
    if size < args.rows:
        short = ", ".join(f"{k} {available[k]}" for k in compared[1:] if available[k] < args.rows)
        print(f"Equal size {size} rows, not {args.rows}: {short} produced fewer.", flush=True)
    cuts = out / f"equal-{size}"
    for name in compared:
        source = flat if name == "seeds" else raw / name
        run_step(
            f"cut-{name}",
            cuts / name,
            ["blend", "--source", f"{name}={source}", "--count", f"{name}={size}", "--seed", str(args.seed)],
            logs,
            resumable=False,
        )
    table_json = out / f"compare-{size}.json"
    command = [
        sys.executable,
        "-m",
        "hf_synth.cli",
        "report",
        "--compare",
        *(str(cuts / name) for name in compared),
        "--seeds",
        str(seeds),
        "--out",
        str(table_json),
    ]
    print("[compare] " + " ".join(command[1:]), flush=True)
    table = subprocess.run(command, capture_output=True, text=True, check=False)
    (logs / "compare.log").write_text(table.stdout + table.stderr, encoding="utf-8")
    if table.returncode:
        raise SystemExit(f"[compare] failed; see {logs / 'compare.log'}")
    print(table.stdout, flush=True)
    ended = {"uptime": uptime(), "time": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    print(f"end: {ended['uptime']}", flush=True)
    result = {
        "rows_per_method": size,
        "rows_available": available,
        "left_out": too_few,
        "skipped": args.skip,
        "seconds": seconds,
        "figures": json.loads(table_json.read_text(encoding="utf-8")),
        "table": table.stdout,
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count()},
        "start": started,
        "end": ended,
        "settings": vars(args),
    }
    (out / "bench_diversity.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    markdown = markdown_table(result["figures"], compared, available)
    (out / "table.md").write_text(markdown + "\n", encoding="utf-8")
    print(markdown, flush=True)
    return 0


COLUMNS = (
    "rows",
    "distinct_1",
    "distinct_2",
    "mean_pairwise_distance",
    "vendi_score",
    "rouge_l_ge_0.7",
    "rouge_l_ge_0.5",
    "root_verbs",
)


def markdown_table(figures: dict, names: list[str], available: dict) -> str:
    """One row per method (report --compare's columns), one column per figure, for BENCHMARKS.md."""
    lines = [
        "| method | kept (before the cut) | " + " | ".join(f"`{c}`" for c in COLUMNS) + " |",
        "|---" * (len(COLUMNS) + 2) + "|",
    ]
    for name, numbers in zip(names, figures.values(), strict=True):
        cells = [
            "-"
            if numbers.get(c) is None
            else f"{numbers[c]:.4g}"
            if isinstance(numbers[c], float)
            else str(numbers[c])
            for c in COLUMNS
        ]
        kept = "175 (the seeds)" if name == "seeds" else str(available.get(name, "-"))
        lines.append(f"| {name} | {kept} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
