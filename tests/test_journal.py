"""The completion journal: every completion on disk as it finishes, answered from disk when asked again."""

from __future__ import annotations

import json

import pytest

from hf_synth.checkpoint import JOURNAL_FILE, Checkpointer
from hf_synth.engine import GenerationEngine, GenerationOutput, SamplingParams
from hf_synth.journal import GenerationJournal, JournaledEngine, request_key

from .conftest import ScriptedEngine


def _output(text: str) -> GenerationOutput:
    return GenerationOutput(text=text, prompt_tokens=3, completion_tokens=2, finish_reason="stop")


def test_journal_reads_back_what_it_wrote_and_ignores_a_torn_last_line(tmp_path):
    path = tmp_path / "j.jsonl"
    journal = GenerationJournal(path)
    journal.append("a", _output("first"))
    journal.append("b", _output("second"))
    journal.close()
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"key": "c", "output": {"text": "cut sh')  # the process died mid-write
    reopened = GenerationJournal(path)
    assert reopened.get("a") == _output("first") and reopened.get("b") == _output("second")
    assert reopened.get("c") is None and len(reopened) == 2
    reopened.append("c", _output("third"))  # the torn line was cut: the file stays valid JSON lines
    reopened.close()
    assert [json.loads(line)["key"] for line in path.read_text().splitlines()] == ["a", "b", "c"]


def test_a_repeated_request_is_answered_from_the_journal(tmp_path):
    inner = ScriptedEngine(lambda text: f"answer to {text}")
    journal = GenerationJournal(tmp_path / "j.jsonl")
    engine = JournaledEngine(inner, journal)
    params = SamplingParams(max_new_tokens=8, seed=1)
    first = engine.generate(["a", "b"], params)
    assert [o.text for o in first] == ["answer to a", "answer to b"] and len(inner.calls) == 1
    again = JournaledEngine(
        ScriptedEngine(lambda text: "never asked"), GenerationJournal(tmp_path / "j.jsonl")
    )
    mixed = again.generate(["b", "c", "a"], params)
    assert [o.text for o in mixed] == ["answer to b", "never asked", "answer to a"]
    assert again.engine.calls == [["c"]] and again.reused == 2
    other_seed = again.generate(["a"], SamplingParams(max_new_tokens=8, seed=2))
    assert other_seed[0].text == "never asked"  # other sampling parameters: another question


class _DiesMidCall:
    """An engine that reports ``survive`` completions, then dies (a crash in the middle of a call)."""

    model_id, backend = "dying", "scripted"

    def __init__(self, survive: int):
        from hf_synth.engine import EngineStats

        self.survive = survive
        self.stats = EngineStats()

    def format_prompt(self, prompt):
        return prompt

    def generate(self, prompts, sampling=None, *, desc="", progress=True, on_output=None):
        for index, prompt in enumerate(prompts[: self.survive]):
            on_output(index, _output(f"done {prompt}"))
        raise RuntimeError("killed")


def test_completions_reported_before_a_crash_are_not_generated_again(tmp_path):
    checkpointer = Checkpointer(tmp_path / "ckpt")
    checkpointer.bind({"run": 1})
    prompts = [f"p{i}" for i in range(5)]
    with pytest.raises(RuntimeError, match="killed"):
        checkpointer.engine(_DiesMidCall(survive=3)).generate(prompts, SamplingParams())
    checkpointer.close()
    lines = (tmp_path / "ckpt" / JOURNAL_FILE).read_text().splitlines()
    assert len(lines) == 3
    restarted = Checkpointer(tmp_path / "ckpt")
    restarted.bind({"run": 1})
    inner = ScriptedEngine(lambda text: f"late {text}", model_id="dying")
    outputs = restarted.engine(inner).generate(prompts, SamplingParams())
    assert [o.text for o in outputs] == ["done p0", "done p1", "done p2", "late p3", "late p4"]
    assert inner.calls == [["p3", "p4"]] and restarted.reused_completions == 5


def test_overwrite_discards_the_journal(tmp_path):
    checkpointer = Checkpointer(tmp_path / "ckpt")
    checkpointer.bind({"run": 1})
    checkpointer.engine(ScriptedEngine(lambda t: "x")).generate(["a"], SamplingParams())
    checkpointer.bind({"run": 2}, overwrite=True)
    inner = ScriptedEngine(lambda t: "y")
    assert checkpointer.engine(inner).generate(["a"], SamplingParams())[0].text == "y"


def test_the_engine_reports_each_completion_as_it_finishes(tiny_model, tiny_tokenizer, tmp_path):
    engine = GenerationEngine(tiny_model, tiny_tokenizer, model_id="tiny", batch_size=2)
    prompts = ["Write a poem about the sea.", "Hello", "Give three tips", "Translate the sentence."]
    seen = {}
    outputs = engine.generate(
        prompts, SamplingParams(max_new_tokens=6, temperature=0), on_output=lambda i, o: seen.setdefault(i, o)
    )
    assert seen == dict(enumerate(outputs))
    journaled = JournaledEngine(engine, GenerationJournal(tmp_path / "j.jsonl"))
    journaled.generate(prompts, SamplingParams(max_new_tokens=6, temperature=0))
    key = request_key(
        "tiny", engine.format_prompt(prompts[1]), SamplingParams(max_new_tokens=6, temperature=0)
    )
    assert journaled.journal.get(key) == outputs[1]
