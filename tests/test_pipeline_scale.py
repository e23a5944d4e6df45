"""Self-Instruct at scale with a teacher that answers at once (bench/instant_teacher.py): rounds sized from
the engine's width, the target and the keep rate; no max_rounds needed to reach a target; novelty equal to
the pure-Python reference; and a run killed with SIGKILL resumes to the same rows."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from datasets import Dataset

from bench.instant_teacher import InstantTeacher
from hf_synth import SelfInstruct, SelfInstructConfig
from hf_synth.engine.protocol import DEFAULT_CONCURRENCY, engine_concurrency
from hf_synth.self_instruct import prepare_seed_pool
from hf_synth.self_instruct.steps import round_requests

from .conftest import SEED_TASKS, ScriptedEngine
from .test_rouge_index import PythonRougeLIndex

ROOT = Path(__file__).resolve().parents[1]


def _seeds() -> Dataset:
    return Dataset.from_list([json.loads(line) for line in SEED_TASKS.read_text().splitlines()])


def test_engine_width_is_read_from_the_engine():
    assert engine_concurrency(InstantTeacher(max_concurrency=48)) == 48
    assert engine_concurrency(ScriptedEngine(lambda t: "")) == DEFAULT_CONCURRENCY == 256


def test_round_requests_follow_width_target_and_keep_rate():
    config = SelfInstructConfig(num_instructions=50_000)
    # Before anything is kept: half of num_new_per_request (4) per prompt, a twentieth of the target.
    assert round_requests(config, 50_000, width=256) == 625
    assert round_requests(config, 50_000, width=1024) == 1024  # never less than the engine's width
    # Near the end only what is still needed (+10%), even below the width.
    assert round_requests(config, 40, width=256, kept=49_960, requests=8_000) == 8
    # 50,000 instructions at a keep rate of 3 per prompt take a few dozen rounds, not thousands.
    kept = requests = rounds = 0
    while kept < 50_000:
        n = round_requests(config, 50_000 - kept, 256, kept, requests)
        kept, requests, rounds = kept + 3 * n, requests + n, rounds + 1
    assert 15 <= rounds <= 40
    # An explicit requests_per_round keeps its old meaning.
    fixed = SelfInstructConfig(num_instructions=100, requests_per_round=16)
    assert round_requests(fixed, 100, width=256) == 16
    assert round_requests(fixed, 5, width=256) == 2


def test_rounds_fill_the_engine_and_reach_the_target_without_max_rounds():
    teacher = InstantTeacher(max_concurrency=64)
    config = SelfInstructConfig(num_instructions=1500, filter_toxicity=False)
    result = SelfInstruct(teacher, config).run(_seeds())
    assert len(result.dataset) == 1500 and result.summary.stopped_early == ""
    instruction_calls = [n for desc, n in teacher.calls if desc == "Instructions"]
    assert instruction_calls[0] == 64  # the engine's width, not 16
    assert all(n >= 64 for n in instruction_calls[:-1])  # the last round may need fewer
    instance_calls = [n for desc, n in teacher.calls if desc == "Instances"]
    assert all(n >= 64 for n in instance_calls[:-1])
    assert result.summary.rounds == len(instruction_calls) <= 10


class GatedTeacher(InstantTeacher):
    """An instant teacher that takes concurrent calls and holds each instruction call until an instance
    call starts (or 2 s pass): it records whether a round's instruction requests were really in flight
    while instances (of the round before) were being generated."""

    def __init__(self, **kwargs) -> None:
        super().__init__(concurrent_calls=True, **kwargs)
        self.changed = threading.Condition()
        self.instance_calls = 0
        self.overlapped: list[bool] = []

    def generate(self, prompts, sampling=None, *, desc="Generating", **kwargs):
        if desc == "Instructions":
            with self.changed:
                seen = self.instance_calls
                self.overlapped.append(self.changed.wait_for(lambda: self.instance_calls > seen, 2.0))
        elif desc == "Instances":
            with self.changed:
                self.instance_calls += 1
                self.changed.notify_all()
        return super().generate(prompts, sampling, desc=desc, **kwargs)


def _parents_by_round(result):
    rounds = {r["id"]: r["round"] for r in result.dataset}
    return [(r["round"], [rounds.get(p, 0) for p in r["parent_ids"]]) for r in result.dataset]


def test_overlap_sends_the_next_rounds_requests_during_this_rounds_instances():
    config = SelfInstructConfig(num_instructions=1000, filter_toxicity=False)
    teacher = GatedTeacher(max_concurrency=32)
    result = SelfInstruct(teacher, config).run(_seeds())
    assert len(result.dataset) == 1000 and result.summary.stopped_early == ""
    rounds = result.summary.rounds
    assert rounds >= 4
    # Rounds 1 and 2 are asked together, before any instance; the requests of every later round but the
    # last one(s) (expected to reach the target: nothing to send ahead) were in flight while the round
    # before generated its instances.
    assert not any(teacher.overlapped[:2]) and all(teacher.overlapped[2 : rounds - 1])
    off = SelfInstructConfig(num_instructions=1000, filter_toxicity=False, overlap_rounds=False)
    gated_off = GatedTeacher(max_concurrency=32)
    SelfInstruct(gated_off, off).run(_seeds())
    assert not any(gated_off.overlapped)
    # The few-shot machine examples of round k come from the pool kept up to round k-2 ...
    parents = _parents_by_round(result)
    assert all(p <= max(0, k - 2) for k, ps in parents for p in ps)
    assert any(p == k - 2 > 0 for k, ps in parents for p in ps)
    # ... where without overlap (or with an engine taking one call at a time) they reach round k-1.
    plain = SelfInstruct(InstantTeacher(max_concurrency=32), config).run(_seeds())
    assert any(p == k - 1 > 0 for k, ps in _parents_by_round(plain) for p in ps)
    unlapped = SelfInstruct(InstantTeacher(max_concurrency=32, concurrent_calls=True), off).run(_seeds())
    assert unlapped.dataset["instruction"] == plain.dataset["instruction"]
    # Deterministic for a given seed, whatever the threads' timing.
    again = SelfInstruct(InstantTeacher(max_concurrency=32, concurrent_calls=True), config).run(_seeds())
    assert again.dataset.to_list() == result.dataset.to_list()
    assert again.rejected.to_list() == result.rejected.to_list()


class CountingTeacher(InstantTeacher):
    """Records the most calls it had in flight at once."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.in_flight = self.most_in_flight = 0

    def generate(self, prompts, sampling=None, **kwargs):
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(0.01)  # long enough for a second call to start while this one runs
            return super().generate(prompts, sampling, **kwargs)
        finally:
            with self._lock:
                self.in_flight -= 1


def test_chunks_streamed_through_the_steps_give_the_same_rows():
    """With an engine that takes concurrent calls, Self-Instruct's instance steps and Evol-Instruct's
    rounds run as streams of chunks, several at once; the rows are those of one call at a time."""
    from hf_synth import EvolInstruct, EvolInstructConfig

    config = SelfInstructConfig(
        num_instructions=600, filter_toxicity=False, checkpoint_every=64, overlap_rounds=False
    )
    streamed_teacher = CountingTeacher(max_concurrency=16, concurrent_calls=True)
    streamed = SelfInstruct(streamed_teacher, config).run(_seeds())
    plain = SelfInstruct(InstantTeacher(max_concurrency=16), config).run(_seeds())
    assert streamed_teacher.most_in_flight >= 2
    assert streamed.dataset.to_list() == plain.dataset.to_list()
    assert streamed.rejected.to_list() == plain.rejected.to_list()
    roots = plain.dataset.select(range(300)).select_columns(["instruction"])
    evol = EvolInstructConfig(rounds=2, judge_self_check="off", checkpoint_every=32)
    evol_teacher = CountingTeacher(max_concurrency=16, concurrent_calls=True)
    evolved = EvolInstruct(evol_teacher, evol).run(roots)
    reference = EvolInstruct(InstantTeacher(max_concurrency=16), evol).run(roots)
    assert evol_teacher.most_in_flight >= 3  # chunks at different steps at once
    assert len(evolved.dataset) > 100
    assert evolved.dataset.to_list() == reference.dataset.to_list()
    assert evolved.rejected.to_list() == reference.rejected.to_list()


def test_a_run_that_keeps_nothing_stops_and_says_why(caplog):
    engine = ScriptedEngine(lambda text: "")
    result = SelfInstruct(engine, SelfInstructConfig(num_instructions=50, stall_rounds=2)).run(_seeds())
    assert result.summary.rounds == 2 and len(result.dataset) == 0
    assert result.summary.stopped_early == "the last 2 rounds kept nothing"
    assert "the last 2 rounds kept nothing" in caplog.text


@pytest.mark.parametrize("concurrent", [False, True], ids=["one-call-at-a-time", "overlapped"])
def test_novelty_equals_the_python_reference_over_rounds(concurrent):
    """Every instruction's rouge_l_max / rouge_l_nearest and keep decision, recomputed with the Python
    index against the seeds + earlier rounds' kept rows + this round's earlier novel candidates (also when
    rounds overlap: only the few-shot examples lag, never the novelty pool)."""
    teacher = InstantTeacher(max_concurrency=16, concurrent_calls=concurrent)
    seeds = _seeds()
    config = SelfInstructConfig(num_instructions=400, filter_toxicity=False, num_new_per_request=6)
    result = SelfInstruct(teacher, config).run(seeds)
    assert result.summary.rounds >= 3
    rows = [{**r, "stage": "kept", "filter_reasons": []} for r in result.dataset]
    rows += [r for r in result.rejected if r["stage"] in ("instruction", "instance", "target")]
    kept_ids = {r["id"] for r in rows if r["stage"] in ("kept", "target")}
    pool_rows = prepare_seed_pool(seeds, config)
    pool = PythonRougeLIndex(pool_rows["instruction"])
    pool_ids = list(pool_rows["id"])
    checked = 0
    for round_index in sorted({r["round"] for r in rows}):
        this = sorted((r for r in rows if r["round"] == round_index), key=lambda r: r["id"])
        local, local_ids = PythonRougeLIndex(), []
        for row in this:
            if row["stage"] == "instruction" and row["filter_reasons"] != ["rouge_l_too_similar"]:
                continue  # dropped by a rule, before ROUGE
            g, lm = pool.best_match(row["instruction"]), local.best_match(row["instruction"])
            if g.score >= lm.score and g.index >= 0:
                best, nearest = g.score, pool_ids[g.index]
            elif lm.index >= 0:
                best, nearest = lm.score, local_ids[lm.index]
            else:
                best, nearest = 0.0, ""
            assert (row["scores"]["rouge_l_max"], row["scores"]["rouge_l_nearest"]) == (best, nearest)
            checked += 1
            if best < config.rouge_l_threshold:
                local.add(row["instruction"])
                local_ids.append(row["id"])
        for row in this:
            if row["id"] in kept_ids:
                pool.add(row["instruction"])
                pool_ids.append(row["id"])
    assert checked >= 400


_RUN = """
import json, sys
sys.path.insert(0, {root!r})
from datasets import Dataset
from datasets.utils.logging import disable_progress_bar
from bench.instant_teacher import InstantTeacher
from hf_synth import SelfInstruct, SelfInstructConfig
disable_progress_bar()
seeds = Dataset.from_list([json.loads(l) for l in open({seeds!r})])
config = SelfInstructConfig(num_instructions={n}, checkpoint_every=32, filter_toxicity=False)
teacher = InstantTeacher(max_concurrency=32, concurrent_calls={concurrent})
result = SelfInstruct(teacher, config, checkpoint_dir={ckpt!r}).run(seeds)
with open({out!r}, "w") as f:
    for part in (result.dataset, result.rejected):
        for row in part:
            f.write(json.dumps(row, sort_keys=True) + "\\n")
"""


def _script(tmp: Path, name: str, n: int, concurrent: bool = False) -> list[str]:
    code = _RUN.format(
        concurrent=concurrent,
        root=str(ROOT),
        seeds=str(SEED_TASKS),
        n=n,
        ckpt=str(tmp / name / "ckpt"),
        out=str(tmp / f"{name}.jsonl"),
    )
    return [sys.executable, "-c", code]


def _env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _saved_chunks(ckpt: Path) -> int:
    """Saved chunks under ``ckpt``, counted while the run writes: a chunk is written into a hidden
    ``.chunk-*`` folder and renamed into place, so folders vanish mid-walk (``os.walk`` skips those;
    ``Path.glob`` raises FileNotFoundError)."""
    return sum(
        1
        for folder, _, files in os.walk(ckpt)
        if Path(folder).name.startswith("chunk-") and "state.json" in files
    )


@pytest.mark.slow
@pytest.mark.parametrize("concurrent", [False, True], ids=["one-call-at-a-time", "overlapped"])
def test_kill_9_and_resume_gives_the_same_rows(tmp_path, concurrent):
    n = 3000
    subprocess.run(_script(tmp_path, "clean", n, concurrent), env=_env(), check=True, timeout=900)
    proc = subprocess.Popen(_script(tmp_path, "killed", n, concurrent), env=_env())
    chunks = tmp_path / "killed" / "ckpt"
    deadline = time.time() + 600
    # Die once a few chunks are saved, in the middle of a round.
    while _saved_chunks(chunks) < 3:
        assert proc.poll() is None, "the run finished before it could be killed; make it longer"
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert not (tmp_path / "killed.jsonl").exists()
    subprocess.run(_script(tmp_path, "killed", n, concurrent), env=_env(), check=True, timeout=900)
    clean = (tmp_path / "clean.jsonl").read_text().splitlines()
    resumed = (tmp_path / "killed.jsonl").read_text().splitlines()
    ids = [json.loads(line)["id"] for line in resumed]
    assert len(ids) == len(set(ids)), "duplicated rows"
    assert resumed == clean
    assert sum(1 for line in resumed if json.loads(line).get("source") == "self-instruct") == n


def test_filter_reasons_that_first_appear_after_a_thousand_rows():
    """datasets types a column from its first batch: a first 1,000 rows without any reason must not make
    the reasons of later rows fail to cast."""
    import random

    from bench.instant_teacher import instruction
    from hf_synth.filters import rouge_novelty_filter, split_filtered

    rng = random.Random(5)
    texts = [instruction(rng) for _ in range(1500)]
    data = Dataset.from_dict({"instruction": texts + texts[:3]})
    kept, dropped = split_filtered(rouge_novelty_filter(data))
    assert len(dropped) >= 3 and dropped["instruction"][-3:] == texts[:3]
    assert len(kept) + len(dropped) == 1503
