"""A step's result saves the same run folder from Python as the command line writes (byte for byte but
timings), pushes itself, and a step binds its own checkpoints."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from datasets import load_from_disk

from hf_synth import EngineConfig, SelfInstruct, SelfInstructConfig
from hf_synth.augment import NegativeConfig, preference_pairs
from hf_synth.checkpoint import CheckpointMismatchError
from hf_synth.cli import main
from hf_synth.io import load_seed_dataset
from hf_synth.run_folder import RunFolder

#: summary.json figures that are timings (they differ between any two runs).
TIMINGS = ("wall_seconds", "generation_seconds", "tokens_per_second", "seconds")


def _files(folder: Path) -> dict[str, bytes]:
    """Every file of a run folder but its checkpoints (a journal records when each completion finished)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).parts[0] != "checkpoints"
    }


def _same_but_timings(python_folder: Path, cli_folder: Path) -> None:
    ours, theirs = _files(python_folder), _files(cli_folder)
    assert sorted(ours) == sorted(theirs)
    for name in ours:
        if name == "summary.json":
            a, b = json.loads(ours[name]), json.loads(theirs[name])
            for key in TIMINGS:
                assert (key in a) == (key in b)
                a.pop(key, None), b.pop(key, None)
            assert a == b
        elif name == "dataset/state.json":  # datasets' fingerprint of the in-memory table differs per process
            a, b = json.loads(ours[name]), json.loads(theirs[name])
            a.pop("_fingerprint"), b.pop("_fingerprint")
            assert a == b
        else:
            assert ours[name] == theirs[name], name


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_self_instruct_saved_from_python_equals_the_cli_folder(tmp_path, tiny_model_dir):
    cli = tmp_path / "cli"
    flags = ["--num-instructions", "4", "--max-rounds", "1", "--requests-per-round", "2"]
    engine_flags = ["--model", str(tiny_model_dir), "--batch-size", "4"]
    assert main(["self-instruct", *flags, "--max-new-tokens", "8", *engine_flags, "--output", str(cli)]) == 0

    defaults = SelfInstructConfig()
    config = SelfInstructConfig(
        num_instructions=4,
        max_rounds=1,
        requests_per_round=2,
        instruction_sampling=replace(defaults.instruction_sampling, max_new_tokens=8),
        instance_sampling=replace(defaults.instance_sampling, max_new_tokens=8),
    )
    ours = tmp_path / "python"
    engine = EngineConfig(model=str(tiny_model_dir), batch_size=4)
    result = SelfInstruct(engine, config, checkpoint_dir=ours / "checkpoints").run()
    paths = result.save(ours)
    assert paths["card"] == ours / "README.md" and paths["config"] == ours / "config.yaml"
    _same_but_timings(ours, cli)
    saved = RunFolder(ours)
    assert saved.read_summary()["wall_seconds"] >= 0 and "engine" in (saved.read_config_text() or "")
    assert len(saved.read_dataset()) == len(result.dataset)
    # the run kept its checkpoints: the same run again reuses them, another configuration is refused
    # before the model loads (its folder is named by the refusal)
    with pytest.raises(CheckpointMismatchError, match="seed"):
        SelfInstruct(engine, replace(config, seed=config.seed + 1), checkpoint_dir=ours / "checkpoints").run()


def test_an_augment_step_saved_from_python_equals_the_cli_folder(tmp_path, tiny_model_dir):
    data = _write_jsonl(
        tmp_path / "rows.jsonl",
        [{"instruction": f"Name a colour number {i}.", "output": "Blue."} for i in range(4)],
    )
    cli = tmp_path / "cli"
    engine_flags = ["--model", str(tiny_model_dir), "--batch-size", "4"]
    args = ["negatives", "--input", str(data), "--kinds", "off_topic", "--max-new-tokens", "8", *engine_flags]
    assert main([*args, "--output", str(cli)]) == 0

    defaults = NegativeConfig()
    config = NegativeConfig(kinds=["off_topic"], sampling=replace(defaults.sampling, max_new_tokens=8))
    ours = tmp_path / "python"
    result = preference_pairs(
        load_seed_dataset(str(data)),
        EngineConfig(model=str(tiny_model_dir), batch_size=4),
        config,
        source=str(data),
        checkpoint_dir=ours / "checkpoints",
    )
    pairs, rejected = result  # unpacks as before
    assert pairs is result.dataset and rejected is result.rejected
    result.save(ours)
    _same_but_timings(ours, cli)
    config_text = RunFolder(ours).read_config_text()
    assert config_text.startswith("engine:\n") and "negatives:" in config_text  # the engine section too
    card = (ours / "README.md").read_text()
    assert "Pairs whose flawed answer was empty or the same as the chosen one were dropped." in card
    assert "Flawed answers equal" not in card
    assert len(load_from_disk(str(ours / "dataset"))) == len(pairs)


def test_a_result_pushes_itself_like_a_saved_folder(tmp_path, tiny_model_dir, monkeypatch):
    """push_to_hub of a result sends the rows, the rejected rows and the card ``save`` writes."""
    import hf_synth.hub

    from .conftest import ScriptedEngine

    sent = {}

    def fake_push(dataset, repo_id, *, card=None, rejected=None, **kwargs):
        sent.update(dataset=dataset, repo_id=repo_id, card=card, rejected=rejected, **kwargs)
        return f"https://hub.example/datasets/{repo_id}"

    monkeypatch.setattr(hf_synth.hub, "push_to_hub", fake_push)
    rows = [{"instruction": f"Name a colour number {i}.", "output": "Blue."} for i in range(3)]
    from datasets import Dataset

    result = preference_pairs(Dataset.from_list(rows), ScriptedEngine(lambda p: "Blue."), NegativeConfig())
    assert result.push_to_hub("me/pairs", private=True) == "https://hub.example/datasets/me/pairs"
    assert sent["repo_id"] == "me/pairs" and sent["private"] is True
    assert sent["dataset"] is result.dataset and str(sent["card"]) == str(result.card())
    assert len(sent["rejected"]) == len(result.rejected) == 3  # every flawed answer equals the chosen one
    result.save(tmp_path / "out")
    assert (tmp_path / "out" / "README.md").read_text() == str(result.card())
