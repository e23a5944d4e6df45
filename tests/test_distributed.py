"""Data-parallel generation: 2 CPU processes (gloo) under `accelerate launch` equal one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from hf_synth.engine.distributed import ROW, gather_rows

PROMPTS = [f"Task {i}: write about {topic}." for i, topic in enumerate("abcdefghijk")]


def _run(command: list[str], tmp_path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "HF_SYNTH_CACHE": str(tmp_path / "cache"),
    }
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rows(folder) -> list[dict]:
    return [json.loads(line) for line in (folder / "data.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_processes_give_the_single_process_result_in_order(tmp_path, tiny_model_dir):
    source = tmp_path / "prompts.jsonl"
    source.write_text("".join(json.dumps({"id": i, "prompt": p}) + "\n" for i, p in enumerate(PROMPTS)))
    common = ["generate", "--input", str(source), "--model", str(tiny_model_dir), "--max-new-tokens", "8"]
    common += ["--temperature", "0.8", "--batch-size", "3"]
    _run([sys.executable, "-m", "hf_synth.cli", *common, "--output", str(tmp_path / "one")], tmp_path)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    launch += [
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(_free_port()),
    ]
    proc = _run([*launch, "-m", "hf_synth.cli", *common, "--output", str(tmp_path / "two")], tmp_path)
    assert "from 2 process(es)" in proc.stdout
    assert json.loads((tmp_path / "two" / "summary.json").read_text())["processes"] == 2
    assert "over 2 process(es)" in (tmp_path / "two" / "README.md").read_text()  # the card, main process only
    one, two = _rows(tmp_path / "one"), _rows(tmp_path / "two")
    assert [r["id"] for r in two] == list(range(len(PROMPTS)))  # original order, nothing lost or repeated
    assert [r["prompt"] for r in two] == PROMPTS
    # Every prompt samples from its own seeded stream, so the shards reproduce the single-process texts.
    assert [r["output"] for r in two] == [r["output"] for r in one]
    assert all(r["completion_tokens"] >= 1 for r in two)


def test_gather_refuses_lost_or_repeated_rows():
    rows = [{ROW: i, "text": str(i)} for i in range(4)]
    assert [r["text"] for r in gather_rows(rows[::-1], 4, lambda x: x)] == ["0", "1", "2", "3"]
    with pytest.raises(RuntimeError, match=r"missing \[3\]"):
        gather_rows(rows[:3], 4, lambda x: x)
    with pytest.raises(RuntimeError, match=r"duplicated \[1\]"):
        gather_rows(rows + [rows[1]], 4, lambda x: x)


def test_generate_distributed_in_one_process(tiny_model, tiny_tokenizer):
    from datasets import Dataset

    from hf_synth import GenerationEngine, SamplingParams
    from hf_synth.engine.distributed import generate_distributed

    engine = GenerationEngine(model=tiny_model, tokenizer=tiny_tokenizer, model_id="tiny", batch_size=4)
    data = Dataset.from_dict({"prompt": PROMPTS[:5]})
    out = generate_distributed(data, engine, SamplingParams(max_new_tokens=4, temperature=0), progress=False)
    assert out.column_names == ["prompt", "output", "completion_tokens", "finish_reason"]
    expected = engine.generate(PROMPTS[:5], SamplingParams(max_new_tokens=4, temperature=0), progress=False)
    assert list(out["output"]) == [o.text for o in expected]
    with pytest.raises(ValueError, match="--prompt-column"):
        generate_distributed(data, engine, prompt_column="question")
