"""Refusals a user meets before anything runs: a rerun with other settings into the same --output names each
changed setting with both values (in the wording of the interface used), and a bad input file is refused
before torch, nltk and numba are imported."""

import json
import subprocess
import sys

import pytest

from hf_synth.checkpoint import Checkpointer, CheckpointMismatchError
from hf_synth.cli import main


@pytest.fixture
def no_model(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the refusal")

    monkeypatch.setattr("hf_synth.engine.load_engine", refuse)


def _cli_fingerprint(**changes):
    """The fingerprint `hf-synth self-instruct` (example seeds, default model) ties its checkpoints to."""
    from hf_synth import SelfInstruct, SelfInstructConfig
    from hf_synth.engine import EngineConfig
    from hf_synth.engine.engine import model_id_of
    from hf_synth.io import load_seed_dataset
    from hf_synth.self_instruct import prepare_seed_pool

    config = SelfInstructConfig(**changes)
    pool = prepare_seed_pool(load_seed_dataset(None), config)
    return SelfInstruct.run_fingerprint(config, model_id_of(EngineConfig()), pool)


def test_cli_refusal_names_each_changed_setting_with_both_values(tmp_path, capsys, no_model):
    out = tmp_path / "run"
    Checkpointer(out / "checkpoints").bind(_cli_fingerprint())  # a run with the defaults was here
    capsys.readouterr()
    assert main(["self-instruct", "--output", str(out), "--seed", "7", "--max-new-tokens", "64"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hf-synth: error: ") and "\n" not in err, err
    assert "seed: 42 → 7" in err
    assert "instruction_sampling.max_new_tokens: 256 → 64" in err  # nested settings are dotted
    assert "instance_sampling.max_new_tokens: 256 → 64" in err
    assert "temperature" not in err and "top_p" not in err  # --max-new-tokens changes nothing else
    assert "changed: config" not in err and "config.seed" not in err
    assert "pass --overwrite" in err and "overwrite=True" not in err  # the CLI speaks CLI
    # the same settings again are not refused: nothing is named when nothing changed
    assert Checkpointer(out / "checkpoints").check(_cli_fingerprint()) is True


def test_python_refusal_names_the_setting_and_speaks_python(tmp_path):
    Checkpointer(tmp_path).bind({"config": {"seed": 42, "engine": {"max_new_tokens": 256}}, "model": "a"})
    with pytest.raises(CheckpointMismatchError) as caught:
        Checkpointer(tmp_path).bind({"config": {"seed": 42, "engine": {"max_new_tokens": 64}}, "model": "b"})
    text = str(caught.value)
    assert "engine.max_new_tokens: 256 → 64" in text and 'model: "a" → "b"' in text
    assert "seed" not in text  # unchanged settings are not listed
    assert "pass overwrite=True" in text and "--overwrite" not in text
    assert caught.value.changes == [("engine.max_new_tokens", 256, 64), ("model", "a", "b")]


def test_refusal_names_added_settings_and_changed_rows(tmp_path):
    Checkpointer(tmp_path).bind({"config": {"seed": 1}, "seeds": "a" * 64})
    with pytest.raises(CheckpointMismatchError) as caught:
        Checkpointer(tmp_path).bind({"config": {"seed": 1, "focus": ["math"]}, "seeds": "b" * 64})
    text = str(caught.value)
    assert 'focus: (not set) → ["math"]' in text
    assert "seeds: rows aaaaaaaa… → rows bbbbbbbb…" in text  # a content hash, not 64 digits twice


_PROBE = """
import json, sys
from hf_synth.cli import main
code = main(sys.argv[1:])
heavy = [m for m in ("torch", "nltk", "numba") if m in sys.modules]
print(json.dumps({"code": code, "heavy": heavy}))
"""

_BAD_FILES = {
    "missing": (None, "does not exist"),
    "empty": (b"", "is empty (0 bytes)"),
    "blank": (b"\n  \n", "is empty; put one JSON object per line"),
    "broken_line": (b'{"instruction": "Name a colour."}\n{"instruction": oops}\n', "line 2 column 17"),
    "no_column": (b'{"prompt": "Name a colour."}\n', "has no 'instruction' column (columns: prompt)"),
    "latin1": ('{"instruction": "Caf\u00e9?"}\n'.encode("latin-1"), "line 1 is not valid UTF-8 (byte 0xe9"),
}


@pytest.mark.parametrize("command", ["self-instruct", "evol-instruct"])
@pytest.mark.parametrize("case", sorted(_BAD_FILES))
def test_bad_input_file_is_refused_before_heavy_imports(tmp_path, command, case):
    content, expected = _BAD_FILES[case]
    path = tmp_path / f"{case}.jsonl"
    if content is not None:
        path.write_bytes(content)
    flag = "--seeds" if command == "self-instruct" else "--input"
    args = [command, flag, str(path), "--output", str(tmp_path / "out")]
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, timeout=120, check=False
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 2, done.stderr
    assert expected in done.stderr and done.stderr.startswith("hf-synth: error: "), done.stderr
    assert result["heavy"] == [], f"imported before the error: {result['heavy']}"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "command", [["filter", "--config", "filters.yaml"], ["paraphrase"], ["generate"], ["backtranslate"]]
)
def test_other_commands_refuse_a_broken_file_before_heavy_imports(tmp_path, command):
    path = tmp_path / "broken.jsonl"
    path.write_bytes(b'{"instruction": "x"}\n{"instruction": oops}\n')
    args = [command[0], "--input", str(path), "--output", str(tmp_path / "out"), *command[1:]]
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, timeout=120, check=False
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 2 and "broken.jsonl line 2 column 17" in done.stderr, done.stderr
    assert result["heavy"] == [], f"imported before the error: {result['heavy']}"
