"""bench/bench_refine_ablation.py without models: a resumed arm does not train its finished rounds again, and
the tables cover every round (means ± SE, differences to B with the 2-SE verdict, timings, per skill)."""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "bench_refine_ablation.py"
SKILLS = ("coding", "translation")


@pytest.fixture(scope="module")
def ablation():
    spec = importlib.util.spec_from_file_location("bench_refine_ablation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _record(score: float) -> dict:
    return {
        "overall": {s: score for s in ("rouge_l", "rouge_l_recall", "cosine")},
        "per_skill": {s: dict.fromkeys(SKILLS, score) for s in ("rouge_l", "rouge_l_recall", "cosine")},
        "seconds": 7.0,
        "tokens": 10,
        "answers": ["x"],
    }


def test_a_resumed_arm_trains_only_the_rounds_not_yet_trained(ablation, tmp_path, monkeypatch):
    from datasets import Dataset

    import hf_synth.refine.refine as refine_module

    trained: list[int] = []

    def fake_fine_tune(dataset, base, out, config):
        trained.append(len(dataset))
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "model.safetensors").write_text("weights")
        return {"train_loss": 1.5, "steps": len(dataset) // 4, "rows": len(dataset), "seconds": 3.0}

    monkeypatch.setattr(refine_module, "fine_tune", fake_fine_tune)
    runner = object.__new__(ablation.Ablation)
    runner.args = argparse.Namespace(
        per_round=4, learning_rate=1e-4, epochs=1.0, train_batch_size=4, max_length=64, lora=False,
        keep_students=False,
    )  # fmt: skip
    runner.out = tmp_path
    runner.Dataset = Dataset

    def select(arm, seed, k, used, student, last, before):
        rows = [
            {
                "instruction": f"task {k}-{i}",
                "messages": [{"role": "user", "content": "q"}],
                "skill": "coding",
            }
            for i in range(4)
        ]
        return rows, {}

    runner.select = select
    runner.evaluate = lambda model, path: _record(0.1)
    round0 = _record(0.1)
    runner.run_arm("B", 0, 1, "base", round0)
    runner.run_arm("B", 0, 2, "base", round0)  # what the round-major loop does for round 2
    runner.run_arm("B", 0, 2, "base", round0)  # and a rerun after both rounds finished
    assert trained == [4, 8]  # round 1 on its 4 rows, round 2 on all 8; nothing trained twice
    training = json.loads((tmp_path / "arms" / "B" / "seed-0" / "round-2" / "training.json").read_text())
    assert training["rows"] == 8


def _write_run(out: Path) -> None:
    def write(path: Path, value) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))

    write(out / "eval" / "round-0.json", _record(0.1))
    write(out / "eval" / "subset.json", {"tasks": 2, "of": 2, "skills": list(SKILLS)})
    for arm, base in (("A", 0.2), ("B", 0.1), ("C", 0.1)):
        for seed in range(3):
            for k in (1, 2):
                rf = out / "arms" / arm / f"seed-{seed}" / f"round-{k}"
                score = base + 0.001 * seed + (0.05 if arm == "A" and k == 2 else 0.0)
                write(rf / "eval.json", _record(score))
                write(rf / "selection.json", {"seconds": 11.0 + seed})
                write(
                    rf / "training.json",
                    {"train_loss": 1.25, "steps": 3 * k, "rows": 12 * k, "seconds": 40.0},
                )


def test_the_tables_cover_every_round_with_the_verdict_and_timings(ablation, tmp_path):
    _write_run(tmp_path)
    text = ablation.tables(tmp_path, 2)
    lines = text.splitlines()
    for arm in ("A", "B", "C"):
        for k in (1, 2):
            assert any(line.startswith(f"| {arm} {ablation.ARM_NAMES[arm]} | {k} | 3 |") for line in lines)
    (a2,) = [line for line in lines if line.startswith("| A − B | 2 |")]
    assert a2.count("**> 2 SE**") == 3
    (c2,) = [line for line in lines if line.startswith("| C − B | 2 |")]
    assert c2.count("within 2 SE") == 3
    (timing,) = [line for line in lines if line.startswith("| B | 2 | 3 |")]
    assert timing == "| B | 2 | 3 | 11–13 | 24 | 6 | 1.25 | 40 | 7 |"
    # three lines of round 2 of arm A: timings, per-skill ROUGE-L F, per-skill cosine
    assert sum(line.startswith("| A | 2 | ") for line in lines) == 3
