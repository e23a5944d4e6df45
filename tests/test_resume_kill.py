"""Kill a real CLI run with SIGKILL mid-generation, run the same command again, and compare with an
uninterrupted run: nothing lost, nothing duplicated, identical rows. Uses the real default model.

Generation is deterministic, so equal rows alone would not show that the restart reused anything: each
test also checks that every chunk finished before the kill is read back untouched, that the journal
written before the kill is kept as it was, and that the teacher is never asked again for a journaled
prompt (a completion the teacher makes is journaled, so a key journaled twice is a prompt asked twice).
The kill point is drawn from a seed printed with every failure (rerun one with HF_SYNTH_KILL_SEED=N).
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hf_synth.checkpoint import JOURNAL_FILE

from .conftest import SEED_TASKS

pytestmark = pytest.mark.slow


def _finished_chunks(output: Path) -> int:
    return sum(1 for p in (output / "checkpoints").glob("**/chunk-*/state.json"))


def _journaled_completions(output: Path) -> int:
    path = output / "checkpoints" / JOURNAL_FILE
    return path.read_bytes().count(b"\n") if path.is_file() else 0


def _cli(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "hf_synth.cli", "--log-level", "WARNING", *args]


def _env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _run_and_kill(args: list[str], output: Path, rng: random.Random, progress=_finished_chunks) -> int:
    """Start the command, SIGKILL it once ``progress`` (finished chunks, or journaled completions) reaches
    1-3 (plus a random delay). Returns the progress when it died."""
    target = rng.randint(1, 3)
    proc = subprocess.Popen(_cli(args), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while progress(output) < target:
        assert proc.poll() is None, "the run finished before it could be killed; make it longer"
        assert time.time() < deadline
        time.sleep(0.05)
    time.sleep(rng.uniform(0, 0.5))
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    return progress(output)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _compare(killed_out: Path, clean_out: Path) -> None:
    kept, reference = _rows(killed_out / "data.jsonl"), _rows(clean_out / "data.jsonl")
    rejected, reference_rejected = _rows(killed_out / "rejected.jsonl"), _rows(clean_out / "rejected.jsonl")
    ids = [r["id"] for r in kept + rejected]
    assert len(ids) == len(set(ids)), "duplicated rows"
    assert [r["id"] for r in kept] == [r["id"] for r in reference], "lost or extra kept rows"
    assert [r["id"] for r in rejected] == [r["id"] for r in reference_rejected], "lost or extra rejected rows"
    assert kept == reference  # same content, not just the same ids


@pytest.fixture
def seeds(tmp_path) -> Path:
    path = tmp_path / "seeds.jsonl"
    path.write_text("\n".join(SEED_TASKS.read_text().splitlines()[:8]) + "\n")
    return path


def _config(tmp_path: Path, section: str) -> Path:
    path = tmp_path / f"{section}.yaml"
    path.write_text(f"{section}:\n  checkpoint_every: 1\n")  # a chunk per prompt: many places to die
    return path


def _chunk_files(output: Path) -> dict[str, tuple[int, int]]:
    """Every finished chunk's state file, with its inode and modification time (a chunk written again
    is a new file: Checkpointer.save renames a fresh folder into place)."""
    files = (output / "checkpoints").glob("**/chunk-*/state.json")
    return {str(p.relative_to(output)): (p.stat().st_ino, p.stat().st_mtime_ns) for p in files}


def _journal_keys(data: bytes) -> list[str]:
    return [json.loads(line)["key"] for line in data.decode().splitlines() if line.strip()]


def _finish(args: list[str]) -> None:
    proc = subprocess.run(_cli(args), env=_env(), capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stderr[-3000:]}"


def _kill_seed() -> int:
    """The seed of a kill point: HF_SYNTH_KILL_SEED when set (to rerun a failure), else a fresh one."""
    given = os.environ.get("HF_SYNTH_KILL_SEED")
    return int(given) if given else random.SystemRandom().randrange(10**9)


def _kill_resume_compare(tmp_path: Path, args: list[str], seed: int, progress=_finished_chunks) -> None:
    print(f"kill seed {seed} (rerun with HF_SYNTH_KILL_SEED={seed})")  # shown by pytest with a failure
    try:
        _kill_resume_compare_seeded(tmp_path, args, seed, progress)
    except AssertionError as err:
        raise AssertionError(f"kill seed {seed} (HF_SYNTH_KILL_SEED={seed} reruns it): {err}") from err


def _kill_resume_compare_seeded(tmp_path: Path, args: list[str], seed: int, progress) -> None:
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    finished = _run_and_kill([*args, "--output", str(killed)], killed, random.Random(seed), progress)
    assert finished >= 1 and not (killed / "data.jsonl").exists()
    chunks = _chunk_files(killed)
    journal = killed / "checkpoints" / JOURNAL_FILE
    before = journal.read_bytes() if journal.is_file() else b""
    before = before[: before.rfind(b"\n") + 1]  # a line cut by the kill is not a journaled completion
    journaled = set(_journal_keys(before))
    assert chunks or journaled, "nothing was kept before the kill"
    _finish([*args, "--output", str(killed)])
    after = _chunk_files(killed)
    assert {name: after.get(name) for name in chunks} == chunks, "a chunk finished before the kill was redone"
    data = journal.read_bytes()
    assert data.startswith(before), "the journal written before the kill was not kept"
    asked_again = journaled & set(_journal_keys(data[len(before) :]))
    assert not asked_again, f"{len(asked_again)} journaled prompt(s) were asked of the teacher again"
    _finish([*args, "--output", str(clean)])
    _compare(killed, clean)
    # The journaled completions were needed: the uninterrupted run asked the teacher for each of them.
    clean_keys = set(_journal_keys((clean / "checkpoints" / JOURNAL_FILE).read_bytes()))
    assert journaled <= clean_keys


def test_self_instruct_survives_sigkill(tmp_path, seeds):
    args = [
        "self-instruct",
        "--seeds",
        str(seeds),
        "--num-instructions",
        "3",
        "--requests-per-round",
        "3",
        "--max-rounds",
        "2",
        "--max-new-tokens",
        "48",
        "--seed",
        "5",
        "--config",
        str(_config(tmp_path, "self_instruct")),
    ]
    _kill_resume_compare(tmp_path, args, seed=_kill_seed())


def test_evol_instruct_survives_sigkill(tmp_path, seeds):
    args = [
        "evol-instruct",
        "--input",
        str(seeds),
        "--rounds",
        "2",
        "--max-new-tokens",
        "32",
        "--seed",
        "5",
        "--config",
        str(_config(tmp_path, "evol_instruct")),
    ]
    _kill_resume_compare(tmp_path, args, seed=_kill_seed())


def test_self_instruct_survives_sigkill_inside_one_engine_call(tmp_path, seeds):
    """Default chunking: a whole step is one engine call, and the kill lands inside it, after 1-3
    completions were journaled; the restarted run reuses them and ends with the same rows."""
    args = [
        "self-instruct",
        "--seeds",
        str(seeds),
        "--num-instructions",
        "3",
        "--requests-per-round",
        "4",
        "--max-rounds",
        "2",
        "--max-new-tokens",
        "48",
        "--seed",
        "6",
    ]
    _kill_resume_compare(tmp_path, args, seed=_kill_seed(), progress=_journaled_completions)


def test_filter_with_a_yaml_judge_survives_sigkill(tmp_path):
    """A judge filter from a YAML list journals its verdicts under --output: a killed `hf-synth filter`
    restarted with the same command asks the model nothing twice and keeps the same rows."""
    rows = [json.loads(line) for line in SEED_TASKS.read_text().splitlines()[:10]]
    data = tmp_path / "answers.jsonl"
    data.write_text(
        "".join(
            json.dumps(
                {"id": r["id"], "instruction": r["instruction"], "output": r["instances"][0]["output"]}
            )
            + "\n"
            for r in rows
        )
    )
    config = tmp_path / "judge.yaml"
    config.write_text("filters:\n  - name: judge\n    min_quality: 3\n")
    args = ["filter", "--input", str(data), "--config", str(config)]
    _kill_resume_compare(tmp_path, args, seed=_kill_seed(), progress=_journaled_completions)
    keys = [json.loads(line)["key"] for line in (tmp_path / "killed" / "checkpoints" / JOURNAL_FILE).open()]
    assert len(keys) == len(set(keys)), "a verdict was asked for twice"
