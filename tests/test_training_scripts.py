"""scripts/sft.py and scripts/dpo.py run end to end on a tiny model and data made by hf-synth."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from datasets import Dataset

from hf_synth import SelfInstruct, SelfInstructConfig, save_run

from .conftest import ScriptedEngine
from .test_self_instruct import SEEDS, make_reply

pytestmark = pytest.mark.slow
SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _train_flags(out: Path, steps: int = 2) -> list[str]:
    """A few steps, no checkpoints: enough to show the script trains and saves."""
    return [
        "--max_steps",
        str(steps),
        "--per_device_train_batch_size",
        "2",
        "--output_dir",
        str(out),
        "--save_strategy",
        "no",
    ]


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    for name in (
        "HF_DATASETS_DISABLE_PROGRESS_BARS",
        "HF_HUB_DISABLE_PROGRESS_BARS",
        "DATASETS_VERBOSITY",
        "TRANSFORMERS_VERBOSITY",
    ):
        env.pop(name, None)  # as in a user's shell (in-process CLI tests set these): the script quiets bars
    return subprocess.run(
        [sys.executable, str(SCRIPTS / script), *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_sft_on_a_self_instruct_run(tmp_path, tiny_model_dir):
    result = SelfInstruct(ScriptedEngine(make_reply()), SelfInstructConfig(num_instructions=6, seed=3)).run(
        Dataset.from_list(SEEDS)
    )
    save_run(tmp_path / "run", result.dataset, result.rejected)
    out = tmp_path / "sft"
    proc = _run(
        "sft.py",
        "--dataset",
        str(tmp_path / "run"),
        "--model_name_or_path",
        str(tiny_model_dir),
        *_train_flags(out, 3),
        "--logging_steps",
        "1",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "deprecated" not in proc.stderr, proc.stderr  # e.g. TRL's default under transformers' old name
    assert "Loading weights" not in proc.stderr and "examples/s" not in proc.stderr, proc.stderr
    assert "it/s" in proc.stderr or "s/it" in proc.stderr  # the training bar stays
    metrics = json.loads((out / "train_results.json").read_text())
    assert math.isfinite(metrics["train_loss"]) and metrics["train_loss"] > 0
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.num_hidden_layers == 2


def test_sft_refuses_preference_data(tmp_path, tiny_model_dir):
    Dataset.from_list(
        [
            {
                "prompt": "p",
                "chosen": "good",
                "rejected": "bad",
                "messages": [{"role": "user", "content": "p"}, {"role": "assistant", "content": "bad"}],
            }
        ]
    ).save_to_disk(str(tmp_path / "pairs"))
    proc = _run(
        "sft.py",
        "--dataset",
        str(tmp_path / "pairs"),
        "--model_name_or_path",
        str(tiny_model_dir),
        "--output_dir",
        str(tmp_path / "o"),
    )
    assert proc.returncode != 0 and "scripts/dpo.py" in proc.stderr
    assert not (tmp_path / "o" / "model.safetensors").exists()


def _sft_rows(n: int = 4, negative: list[bool] | None = None) -> Dataset:
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"Write a poem {i}."},
                {"role": "assistant", "content": "The quick brown fox."},
            ]
        }
        for i in range(n)
    ]
    if negative is not None:
        for row, flag in zip(rows, negative, strict=True):
            row["is_negative"] = flag
    return Dataset.from_list(rows)


def test_sft_refuses_rows_marked_is_negative(tmp_path, tiny_model_dir):
    """One negative example among ordinary rows is enough to refuse the data (no columns of DPO pairs)."""
    _sft_rows(4, negative=[False, False, True, False]).save_to_disk(str(tmp_path / "mixed"))
    proc = _run(
        "sft.py", "--dataset", str(tmp_path / "mixed"), "--model_name_or_path", str(tiny_model_dir),
        *_train_flags(tmp_path / "o"),
    )  # fmt: skip
    assert proc.returncode != 0 and "Rows marked is_negative found" in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "o" / "model.safetensors").exists()
    _sft_rows(4, negative=[False] * 4).save_to_disk(str(tmp_path / "none-negative"))
    proc = _run(
        "sft.py", "--dataset", str(tmp_path / "none-negative"), "--model_name_or_path", str(tiny_model_dir),
        *_train_flags(tmp_path / "ok"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]  # the column alone, all False, is ordinary data


def test_sft_stops_on_a_non_finite_loss_and_saves_nothing(tmp_path, tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        model.get_input_embeddings().weight.fill_(float("nan"))  # every loss is NaN
    model.save_pretrained(tmp_path / "nan-model")
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(tmp_path / "nan-model")
    _sft_rows(4).save_to_disk(str(tmp_path / "data"))
    out = tmp_path / "o"
    proc = _run(
        "sft.py", "--dataset", str(tmp_path / "data"), "--model_name_or_path", str(tmp_path / "nan-model"),
        *_train_flags(out),
    )  # fmt: skip
    assert proc.returncode != 0 and "Training loss is not finite" in proc.stderr, proc.stderr[-2000:]
    assert not (out / "model.safetensors").exists() and not (out / "train_results.json").exists()


def test_dpo_on_preference_pairs(tmp_path, tiny_model_dir):
    Dataset.from_list(
        [
            {"prompt": f"Write a poem {i}.", "chosen": "The quick brown fox.", "rejected": "No"}
            for i in range(6)
        ]
    ).save_to_disk(str(tmp_path / "pairs"))
    out = tmp_path / "dpo"
    proc = _run(
        "dpo.py",
        "--dataset",
        str(tmp_path / "pairs"),
        "--model_name_or_path",
        str(tiny_model_dir),
        *_train_flags(out, 2),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    # TRL's checkpointing default under the old name (TRL's own trainer code still calls transformers'
    # deprecated is_gradient_checkpointing/..._enable, which this script cannot change)
    assert "`gradient_checkpointing` is deprecated" not in proc.stderr, proc.stderr
    assert math.isfinite(json.loads((out / "train_results.json").read_text())["train_loss"])


def test_dpo_names_missing_columns(tmp_path):
    Dataset.from_list([{"prompt": "p", "chosen": "c"}]).save_to_disk(str(tmp_path / "half"))
    proc = _run("dpo.py", "--dataset", str(tmp_path / "half"), "--output_dir", str(tmp_path / "o"))
    assert proc.returncode != 0 and "rejected" in proc.stderr and "prompt, chosen and rejected" in proc.stderr


def test_sft_with_lora(tmp_path, tiny_model_dir):
    Dataset.from_list(
        [
            {
                "messages": [
                    {"role": "user", "content": f"Write a poem {i}."},
                    {"role": "assistant", "content": "The quick brown fox."},
                ]
            }
            for i in range(4)
        ]
    ).save_to_disk(str(tmp_path / "data"))
    out = tmp_path / "lora"
    proc = _run(
        "sft.py",
        "--dataset",
        str(tmp_path / "data"),
        "--model_name_or_path",
        str(tiny_model_dir),
        "--use_peft",
        "--lora_r",
        "4",
        "--lora_target_modules",
        "q_proj",
        "v_proj",
        *_train_flags(out, 2),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "adapter_config.json").is_file() and json.loads((out / "adapter_config.json").read_text())[
        "r"
    ] == 4
