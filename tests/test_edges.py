"""The edges a user hits first: bad input files and output folders give one line, before any model loads,
and leave nothing behind."""

import json

import pytest

from hf_synth.checkpoint import Checkpointer
from hf_synth.cli import main


@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if a command loads a model: every check here must come first."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the bad input was reported")

    monkeypatch.setattr("hf_synth.engine.load_engine", refuse)


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("hf-synth: error: "), err  # one line, no traceback
    return err


@pytest.mark.parametrize("command", ["self-instruct", "evol-instruct", "filter", "paraphrase"])
def test_empty_input_file_is_one_line(tmp_path, capsys, no_model, command):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    config = tmp_path / "f.yaml"
    config.write_text("filters:\n  - {name: length, column: instruction, min_words: 1}\n")
    flag = "--seeds" if command == "self-instruct" else "--input"
    extra = ["--config", str(config)] if command == "filter" else []
    assert main([command, flag, str(empty), "--output", str(tmp_path / "out"), *extra]) == 2
    assert "empty.jsonl is empty" in _error(capsys)
    assert not (tmp_path / "out").exists()  # a refused run leaves nothing behind


def test_whitespace_only_and_zero_row_inputs(tmp_path, capsys, no_model):
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n  \n")
    assert main(["self-instruct", "--seeds", str(blank), "--output", str(tmp_path / "o")]) == 2
    assert "is empty" in _error(capsys)
    header = tmp_path / "header.csv"
    header.write_text("instruction,output\n")
    assert main(["self-instruct", "--seeds", str(header), "--output", str(tmp_path / "o")]) == 2
    assert "holds no rows" in _error(capsys)


@pytest.mark.parametrize(
    "name, text, expected",
    [
        ("bad.jsonl", '{"instruction": "a"}\n{"instruction": "b"}\n{"instruction": "c",}\n', "line 3 column"),
        ("list.jsonl", '{"instruction": "a"}\n[1, 2]\n', "line 2: a JSON list, not an object"),
        ("bad.json", '[\n  {"instruction": "a"},\n  {"instruction": "b"\n]\n', "line 4 column"),
    ],
)
def test_json_syntax_errors_name_the_editor_line(tmp_path, capsys, no_model, name, text, expected):
    path = tmp_path / name
    path.write_text(text)
    assert main(["self-instruct", "--seeds", str(path), "--output", str(tmp_path / "o")]) == 2
    err = _error(capsys)
    assert f"{name} {expected}" in err and "fix" in err


def test_output_that_is_a_file(tmp_path, capsys, no_model):
    afile = tmp_path / "afile.txt"
    afile.write_text("mine\n")
    for command in (
        ["self-instruct"],
        ["evol-instruct", "--input", "x.jsonl"],
        ["blend", "--source", "a=x.jsonl"],
    ):
        assert main([*command, "--output", str(afile)]) == 2
        assert "is a file; name a folder" in _error(capsys)
    assert afile.read_text() == "mine\n"


def test_output_of_another_run_is_refused_before_the_model_loads(tmp_path, capsys, no_model):
    out = tmp_path / "run"
    Checkpointer(out / "checkpoints").bind({"config": "another run"})
    assert main(["self-instruct", "--output", str(out), "--seed", "7"]) == 2
    err = _error(capsys)
    assert "different configuration" in err and "--overwrite" in err
    seeds = tmp_path / "s.jsonl"
    seeds.write_text(json.dumps({"instruction": "Name a colour."}) + "\n")
    assert main(["evol-instruct", "--input", str(seeds), "--output", str(out)]) == 2
    assert "different configuration" in _error(capsys)


def test_missing_config_and_model_paths(tmp_path, capsys, no_model):
    assert (
        main(["self-instruct", "--output", str(tmp_path / "o"), "--config", str(tmp_path / "no.yaml")]) == 2
    )
    assert "no.yaml" in _error(capsys)
    assert main(["self-instruct", "--output", str(tmp_path / "o"), "--model", str(tmp_path / "nomodel")]) == 2
    err = _error(capsys)
    assert "nomodel" in err and "does not exist" in err, err
    assert not (tmp_path / "o").exists()


UNCACHED = "hf-synth-tests/not-in-the-hub-cache"  # a Hub id no cache holds (the tests run offline)


def test_an_uncached_hub_model_is_refused_offline_by_name_before_anything_is_written(
    tmp_path, capsys, no_model
):
    data = tmp_path / "rows.jsonl"
    data.write_text(json.dumps({"instruction": "Name a colour.", "input": "", "output": "Blue."}) + "\n")
    judge = tmp_path / "judge.yaml"
    judge.write_text(f"filters:\n  - {{name: judge, model: {UNCACHED}}}\n")
    commands = [
        ["filter", "--input", str(data), "--config", str(judge)],
        ["self-instruct", "--model", UNCACHED],
        ["evol-instruct", "--input", str(data), "--judge-model", UNCACHED],
    ]
    for command in commands:
        out = tmp_path / "out"
        assert main([*command, "--output", str(out)]) == 2, command
        err = _error(capsys)
        assert UNCACHED in err and "HF_HUB_OFFLINE=1" in err and "hf download" in err, err
        assert not out.exists(), command  # no checkpoints/fingerprint.json left behind


def test_paraphrase_reads_config_and_max_new_tokens(tmp_path, tiny_model_dir, capsys):
    import yaml

    data = tmp_path / "a.jsonl"
    data.write_text(
        "".join(json.dumps({"instruction": f"Task number {i}", "output": "x"}) + "\n" for i in range(3))
    )
    config = tmp_path / "c.yaml"
    config.write_text(f"engine:\n  model: {tiny_model_dir}\n  batch_size: 4\nparaphrase:\n  k: 1\n")
    out = tmp_path / "p"
    assert (
        main(
            [
                "paraphrase",
                "--input",
                str(data),
                "--output",
                str(out),
                "--config",
                str(config),
                "--max-new-tokens",
                "5",
            ]
        )
        == 0
    )
    saved = yaml.safe_load((out / "config.yaml").read_text())["paraphrase"]
    assert saved["k"] == 1 and saved["sampling"]["max_new_tokens"] == 5
    assert json.loads((out / "summary.json").read_text())["paraphrases"] == 3
    capsys.readouterr()
    config.write_text("engine: {}\nparaphrase:\n  kk: 1\n")
    assert (
        main(["paraphrase", "--input", str(data), "--output", str(tmp_path / "p2"), "--config", str(config)])
        == 2
    )
    assert "kk" in _error(capsys)


def test_slots_resume_reuses_the_journal(tmp_path, tiny_model_dir):
    common = [
        "slots",
        "--template",
        "Explain [X] to [Y].",
        "--values",
        "X=gravity|tides",
        "--values",
        "Y=a child|a chef",
        "--num",
        "3",
        "--model",
        str(tiny_model_dir),
        "--batch-size",
        "4",
        "--max-new-tokens",
        "6",
    ]
    assert main([*common, "--output", str(tmp_path / "s")]) == 0
    first = (tmp_path / "s" / "data.jsonl").read_text()
    assert (tmp_path / "s" / "checkpoints" / "generations.jsonl").stat().st_size > 0
    assert main([*common, "--output", str(tmp_path / "s"), "--resume"]) == 0
    assert (tmp_path / "s" / "data.jsonl").read_text() == first
