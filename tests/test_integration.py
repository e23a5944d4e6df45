"""Integration tests on the real embedded default model (SmolLM2-135M-Instruct). Slow; run in CI too."""

import json

import pytest
import torch
from datasets import load_from_disk

from hf_synth import EngineConfig, GenerationEngine, SamplingParams
from hf_synth.cli import main
from hf_synth.engine.default_model import DEFAULT_GGUF_FILE, default_model_path, find_default_gguf
from hf_synth.self_instruct import OUTPUT_COLUMNS

from .conftest import SEED_TASKS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def default_engine():
    return GenerationEngine.from_config(EngineConfig(batch_size=8))


def test_converted_cache_matches_the_gguf_model(default_engine):
    from transformers import AutoModelForCausalLM

    gguf = find_default_gguf()
    original = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=DEFAULT_GGUF_FILE, dtype=torch.float32
    )
    ids = default_engine.tokenizer("Write a haiku about rain.", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        expected = original(ids).logits
        actual = default_engine.model(ids).logits
    torch.testing.assert_close(actual, expected)
    assert (default_model_path() / "model.safetensors").is_file()


def test_continuous_batching_greedy_equals_plain_generate_on_the_default_model(default_engine):
    """The fast engine (packed oneDNN weights, compiled kernels, shared prefixes, slot refills) decodes
    the real model to the same greedy text as transformers' generate, prompt by prompt."""
    assert default_engine.backend == "continuous" and default_engine.runner.use_kernel
    preamble = "You write tasks for a language model. Continue the numbered list with one new task.\n"
    tasks = [json.loads(line)["instruction"] for line in SEED_TASKS.read_text().splitlines()[:10]]
    prompts = [preamble + f"1. {task}\n2." for task in tasks]
    prompts += ["Explain why the sky is blue in two sentences.", "Écris un haïku sur la pluie."]
    outputs = default_engine.generate(
        prompts, SamplingParams(max_new_tokens=40, temperature=0), progress=False
    )
    assert default_engine.runner.reused_prefix_tokens > 0  # the preamble's KV was shared
    tokenizer, model = default_engine.tokenizer, default_engine.model
    for prompt, output in zip(prompts, outputs, strict=True):
        ids = tokenizer(default_engine.format_prompt(prompt), add_special_tokens=False, return_tensors="pt")
        with torch.inference_mode():
            reference = model.generate(
                **ids, max_new_tokens=40, do_sample=False, temperature=None, top_p=None, top_k=None
            )
        expected = tokenizer.decode(reference[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
        assert output.text.strip() == expected.strip(), prompt


def test_default_model_batched_greedy_matches_single_prompts(default_engine):
    prompts = ["Name three fruits.", "Write one sentence about the moon and the stars at night."]
    batched = default_engine.generate(
        prompts, SamplingParams(max_new_tokens=24, temperature=0), progress=False
    )
    single = [
        default_engine.generate([p], SamplingParams(max_new_tokens=24, temperature=0), progress=False)[0]
        for p in prompts
    ]
    assert [o.text for o in batched] == [o.text for o in single]
    assert all(o.text.strip() for o in batched)


def test_self_instruct_cli_on_the_default_model(tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("\n".join(SEED_TASKS.read_text().splitlines()[:12]) + "\n")
    out = tmp_path / "run"
    code = main(
        [
            "self-instruct",
            "--seeds",
            str(seeds),
            "--num-instructions",
            "3",
            "--requests-per-round",
            "4",
            "--max-rounds",
            "3",
            "--max-new-tokens",
            "128",
            "--output",
            str(out),
            "--seed",
            "1",
        ]
    )
    assert code == 0
    dataset = load_from_disk(str(out / "dataset"))
    assert len(dataset) >= 1
    assert dataset.column_names == OUTPUT_COLUMNS
    seed_ids = {json.loads(line)["id"] for line in seeds.read_text().splitlines()}
    for row in dataset:
        assert row["instruction"].strip() and row["output"].strip()
        assert row["model"].startswith("HuggingFaceTB/SmolLM2-135M-Instruct")
        assert set(row["parent_ids"]) <= seed_ids | set(dataset["id"]) | {
            r["id"] for r in map(json.loads, (out / "rejected.jsonl").read_text().splitlines())
        }
        assert row["messages"][-1]["content"] == row["output"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["completion_tokens"] > 0 and summary["tokens_per_second"] > 0


def test_evol_instruct_cli_on_the_default_model(tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("\n".join(SEED_TASKS.read_text().splitlines()[20:26]) + "\n")
    out = tmp_path / "evol"
    assert (
        main(
            [
                "evol-instruct",
                "--input",
                str(seeds),
                "--rounds",
                "1",
                "--output",
                str(out),
                "--max-new-tokens",
                "64",
                "--seed",
                "2",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["evolved"] == 6 and summary["judge_self_check"]["total"] == 4
    rows = [
        json.loads(line)
        for name in ("data.jsonl", "rejected.jsonl")
        for line in (out / name).read_text().splitlines()
    ]
    seed_ids = {json.loads(line)["id"] for line in seeds.read_text().splitlines()}
    assert len(rows) == 6
    for row in rows:
        assert row["root_id"] in seed_ids and row["parent_id"] == row["root_id"] and row["round"] == 1
        assert row["evolution_op"] and row["evolution_completion"]
        assert row["eliminated"] == bool(row["elimination_reasons"])
        if not row["eliminated"]:
            assert row["instruction"].strip() and row["output"].strip()


def test_paraphrase_and_negatives_on_the_default_model(default_engine):
    from datasets import Dataset

    from hf_synth.augment import NegativeConfig, ParaphraseConfig, paraphrase, preference_pairs

    rows = [
        {
            "id": "a",
            "instruction": "Give three tips for staying healthy.",
            "output": "Sleep, eat well, move.",
        },
        {"id": "b", "instruction": "Explain why the sky is blue.", "output": "Sunlight scatters off air."},
    ]
    kept, rejected = paraphrase(
        Dataset.from_list(rows),
        default_engine,
        ParaphraseConfig(k=2, sampling=SamplingParams(max_new_tokens=48, seed=1)),
    )
    assert len(kept) + len(rejected) == 4
    for row in kept:
        assert row["instruction"].strip() and row["parent_id"] in ("a", "b")
        assert row["scores"]["rouge_l_to_parent"] < 0.8
    pairs, dropped = preference_pairs(
        Dataset.from_list(rows),
        default_engine,
        NegativeConfig(sampling=SamplingParams(max_new_tokens=48, seed=1)),
    )
    assert len(pairs) + len(dropped) == 2
    assert all(p["rejected"] and p["rejected"] != p["chosen"] for p in pairs)


def test_slots_and_back_translation_on_the_default_model(default_engine):
    from datasets import Dataset

    from hf_synth.augment import back_translate, fill_template, propose_slot_values

    template = "Explain [topic] to [audience]."
    values = propose_slot_values(
        template, default_engine, count=4, sampling=SamplingParams(max_new_tokens=48, seed=1)
    )
    # the 135M model often copies the prompt's example: those values are dropped, so a slot may be empty
    assert set(values) == {"topic", "audience"} and all(isinstance(v, list) for v in values.values())
    assert all("[" not in v and "lentil soup" not in v.lower() for vs in values.values() for v in vs)
    values = {slot: found or ["a child", "a chef"] for slot, found in values.items()}  # user values fill gaps
    rows = fill_template(
        template, values, default_engine, num=3, answer_sampling=SamplingParams(max_new_tokens=32, seed=1)
    )
    assert (
        len(rows) == len(set(rows["instruction"])) == min(3, len(values["topic"]) * len(values["audience"]))
    )
    kept, rejected = back_translate(
        Dataset.from_list([{"instruction": "Give three tips for sleeping well."}]),
        default_engine,
        sampling=SamplingParams(max_new_tokens=48, temperature=0),
    )
    assert len(kept) + len(rejected) == 1
    row = (kept if len(kept) else rejected)[0]
    assert row["pivot_language"] == "French" and -1 <= row["scores"]["embedding_similarity"] <= 1
