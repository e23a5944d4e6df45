"""What the CLI says it does, it does: evol-instruct's --max-new-tokens limits every generation of the run,
and generate resumes from its completion journal like the other generating commands."""

import json

import yaml

from hf_synth.cli import main

from .conftest import ScriptedEngine
from .test_evol_instruct import ROOTS, evolver, grow


class RecordingEngine(ScriptedEngine):
    """A scripted engine that also records the step (``desc``) and the token limit of every call."""

    def __init__(self, reply):
        super().__init__(reply)
        self.limits: list[tuple[str, int]] = []

    def describe(self):
        return {**super().describe(), "backend_reason": "scripted for this test"}

    def generate(self, prompts, sampling=None, **kwargs):
        self.limits.append((kwargs.get("desc", ""), sampling.max_new_tokens))
        return super().generate(prompts, sampling, **kwargs)


def _evol(tmp_path, monkeypatch, *extra):
    engine = RecordingEngine(evolver(grow))
    monkeypatch.setattr("hf_synth.engine.load_engine", lambda config: engine)  # the step loads its engines
    data = tmp_path / "roots.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROOTS[:2]))
    out = tmp_path / f"evol{len(list(tmp_path.iterdir()))}"
    args = ["evol-instruct", "--input", str(data), "--output", str(out), "--rounds", "1"]
    assert main([*args, "--no-filter-toxicity", *extra]) == 0
    return engine, out


def test_evol_max_new_tokens_limits_evolutions_judge_and_responses(tmp_path, monkeypatch):
    engine, _ = _evol(tmp_path, monkeypatch)
    defaults = dict(engine.limits)
    assert defaults == {"Judge self-check": 6, "Evolving": 160, "Judging": 6, "Responding": 256}

    engine, out = _evol(tmp_path, monkeypatch, "--max-new-tokens", "17")
    assert {desc for desc, _ in engine.limits} == set(defaults)  # every step of the run was asked ...
    assert {limit for _, limit in engine.limits} == {17}  # ... with the one limit given
    params = yaml.safe_load((out / "config.yaml").read_text())["evol_instruct"]
    assert [params[f"{step}_sampling"]["max_new_tokens"] for step in ("evolution", "judge", "response")] == [
        17,
        17,
        17,
    ]


def test_generate_resumes_from_its_journal_and_refuses_a_changed_run(tmp_path, tiny_model_dir, capsys):
    data = tmp_path / "prompts.jsonl"
    data.write_text(
        "".join(json.dumps({"prompt": p}) + "\n" for p in ["Say hi.", "Name a colour.", "Count."])
    )
    out = tmp_path / "gen"
    base = ["generate", "--input", str(data), "--output", str(out), "--model", str(tiny_model_dir)]
    base += ["--max-new-tokens", "4"]

    def summary():
        return json.loads((out / "summary.json").read_text())

    def outputs():
        return [json.loads(line)["output"] for line in (out / "data.jsonl").read_text().splitlines()]

    assert main([*base, "--resume"]) == 2 and "Nothing to resume" in capsys.readouterr().err
    assert main(base) == 0 and summary()["reused_completions"] == 0
    first = outputs()
    journal = out / "checkpoints" / "generations.jsonl"
    assert len(journal.read_text().splitlines()) == 3  # every completion journaled as it finished
    assert main([*base, "--resume"]) == 0
    assert summary()["reused_completions"] == 3 and outputs() == first  # nothing generated again
    assert main([*base, "--resume", "--overwrite"]) == 2 and "contradict" in capsys.readouterr().err
    assert main([*base, "--temperature", "0.3"]) == 2
    err = capsys.readouterr().err
    assert "sampling" in err and "--overwrite" in err
    assert main([*base, "--temperature", "0.3", "--overwrite"]) == 0
    assert summary()["reused_completions"] == 0
