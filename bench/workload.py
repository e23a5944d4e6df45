"""The generation workload of the throughput benchmark: Self-Instruct, Evol-Instruct and answer prompts.

Built from the 175 human-written Self-Instruct seed tasks in ``../shared/data`` when that folder is beside
the checkout (figures in BENCHMARKS.md use it), else from the project's own seed tasks (the test fixture
and the example seeds, 90 rows; a note says so), with hf-synth's own prompt builders, so the benchmark
measures the requests a real run sends to the engine.
"""

from __future__ import annotations

import json
from pathlib import Path

from datasets import Dataset

from hf_synth import EvolInstructConfig, SelfInstructConfig
from hf_synth.evol_instruct.steps import build_evolution_requests, prepare_roots
from hf_synth.rows import user_content
from hf_synth.self_instruct import build_instruction_requests

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT.parent / "shared" / "data" / "self_instruct_seed_tasks.jsonl"
OWN_SEEDS = (ROOT / "tests" / "data" / "seed_tasks.jsonl", ROOT / "hf_synth" / "data" / "example_seeds.jsonl")


def seed_rows() -> list[dict]:
    """``id``, ``instruction``, ``input`` of the seed tasks (see the module docstring for which)."""
    if SEEDS.exists():
        paths = [SEEDS]
    else:
        print(f"note: {SEEDS} is not there; the workload uses the project's own seed tasks instead")
        paths = list(OWN_SEEDS)
    rows = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            instance = row["instances"][0] if "instances" in row else row
            rows.append({"id": row["id"], "instruction": row["instruction"], "input": instance["input"]})
    return rows


def build_workload(n: int = 128) -> list[dict]:
    """``n`` prompts: a third each of instruction generation, evolution and answering (chat messages),
    each tagged with its ``kind``."""
    rows = seed_rows()
    n_generate = n - 2 * (n // 3)
    n_evolve = n // 3
    n_answer = n // 3
    seeds = [{"id": r["id"], "instruction": r["instruction"]} for r in rows]
    requests = build_instruction_requests(
        seeds, [], SelfInstructConfig(requests_per_round=n_generate, seed=0), 0
    )
    workload = [{"kind": "self_instruct", "prompt": p} for p in list(requests["prompt"])[:n_generate]]
    roots = prepare_roots(Dataset.from_list(rows[:n_evolve]), EvolInstructConfig(seed=0))
    evolve = build_evolution_requests(roots, EvolInstructConfig(seed=0), 1)
    workload += [{"kind": "evol_instruct", "prompt": p} for p in evolve["prompt"]]
    for row in rows[n_evolve : n_evolve + n_answer]:
        content = user_content(row["instruction"], row["input"])
        workload.append({"kind": "answer", "prompt": [{"role": "user", "content": content}]})
    return workload
