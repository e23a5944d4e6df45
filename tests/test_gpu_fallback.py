"""The GPU path made safe, checked on the CPU: the continuous batcher's self-check and the fallback of
``auto`` when it fails (or vLLM does not start), the static (fixed-shape) mode's batched prefill, slot
changes and memory arithmetic, sampling without host reads, and the import set of a bare load_engine."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap

import pytest
import torch

from hf_synth.engine import GenerationEngine, SamplingParams
from hf_synth.engine.continuous import ContinuousBatcher, Request
from hf_synth.engine.continuous import model_step as model_step_module
from hf_synth.engine.continuous.cuda_graphs import bytes_per_slot, row_bucket, row_buckets, slots_that_fit
from hf_synth.engine.continuous.model_step import fused_rms_norm, rms_norm
from hf_synth.engine.continuous.sampler import choose
from hf_synth.engine.self_check import CHECK_PROMPTS, check_continuous, compare, tolerance

from .conftest import build_tiny_model, build_tiny_tokenizer

FALLBACK = "instead of continuous"


@pytest.fixture
def fresh_model(tiny_tokenizer):
    """A tiny model of its own (the batcher fuses a model's weights; tests that break it keep it apart)."""
    return build_tiny_model(tiny_tokenizer)


def _prompt_ids(tokenizer, n: int = 7) -> list[list[int]]:
    preamble = "Write one new task for a language model. Here are some examples: "
    texts = [preamble + f"{i}. A question about " + "rivers and more " * (i % 3) for i in range(n - 2)]
    texts += ["Hello", "Sum two numbers: 3 and 4."]
    return [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]


def _broken_run(monkeypatch, how: str) -> None:
    """Make the continuous batcher produce wrong tokens (``"tokens"``) or raise (``"raise"``)."""
    original = ContinuousBatcher.run

    def run(self, requests, spec, on_finish=None):
        if how == "raise":
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        original(self, requests, spec, on_finish)
        for request in requests:  # a token generate rates far below its best (the lowest-scored id here)
            request.tokens = [3] * len(request.tokens)

    monkeypatch.setattr(ContinuousBatcher, "run", run)


# ---------------------------------------------------------------------------------------- the tolerance
def test_compare_accepts_equal_tokens_and_near_ties_only():
    logits = [torch.tensor([0.0, 5.0, 4.9, -3.0]), torch.tensor([1.0, 0.0, 0.0, 0.0])]
    assert compare([1, 0], [1, 0], logits, tol=0.5) is None
    assert compare([2, 3], [1, 0], logits, tol=0.5) is None  # 0.1 below the best: a near-tie, then parted
    problem = compare([3, 0], [1, 0], logits, tol=0.5)
    assert problem is not None and "8 logits below" in problem
    assert "tokens where generate gave" in compare([1], [1, 0], logits, tol=0.5)
    nan = [torch.tensor([0.0, float("nan"), 1.0])]
    assert compare([1], [2], nan, tol=0.5) is not None


def test_tolerance_is_tighter_for_wider_floats():
    assert tolerance(torch.float32) < tolerance(torch.float16) <= tolerance(torch.bfloat16)


# ---------------------------------------------------------------------------------------- the self-check
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_self_check_passes_for_a_working_batcher(tiny_tokenizer, dtype):
    model = build_tiny_model(tiny_tokenizer).to(dtype)
    engine = GenerationEngine(model, tiny_tokenizer, model_id="tiny", self_check=True)
    assert engine.backend == "continuous"
    reason = engine.describe()["backend_reason"]
    assert reason.startswith("Llama-family architecture") and "self-check passed" in reason


@pytest.mark.parametrize("batched_prefill", [True, False])
def test_self_check_of_the_static_bucketed_path(tiny_tokenizer, batched_prefill):
    """The fixed-shape steps CUDA graphs replay, run eagerly at bucketed shapes on the CPU."""
    model = build_tiny_model(tiny_tokenizer)
    batcher = ContinuousBatcher(model, slots=4, eos_ids=[tiny_tokenizer.eos_token_id], static=True)
    batcher.bucket_steps, batcher.batched_prefill = True, batched_prefill
    result = check_continuous(batcher, model, _prompt_ids(tiny_tokenizer), [tiny_tokenizer.eos_token_id])
    assert result.ok, result


def test_self_check_runs_only_on_cuda_by_default(fresh_model, tiny_tokenizer, monkeypatch):
    _broken_run(monkeypatch, "tokens")
    engine = GenerationEngine(fresh_model, tiny_tokenizer)  # CPU: not checked, so not caught
    assert engine.backend == "continuous" and "self-check" not in engine.backend_reason


@pytest.mark.parametrize("how", ["tokens", "raise"])
def test_auto_falls_back_when_the_self_check_fails(fresh_model, tiny_tokenizer, monkeypatch, caplog, how):
    _broken_run(monkeypatch, how)
    with caplog.at_level(logging.INFO, logger="hf_synth.engine"):
        engine = GenerationEngine(fresh_model, tiny_tokenizer, model_id="tiny", self_check=True)
    assert engine.backend == "transformers-paged"  # this transformers has generate_batch
    assert engine.runner.name == "transformers-paged" and engine.batch_size == 256  # its own default
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith(f"Backend transformers-paged {FALLBACK}")
    reason = engine.describe()["backend_reason"]
    assert "fell back from continuous" in reason and "self-check FAILED" in reason
    expected = "illegal memory access" if how == "raise" else "logits below generate's"
    assert expected in warnings[0] and expected in reason
    greedy = SamplingParams(max_new_tokens=4, temperature=0)
    assert len(engine.generate(["Name a river."], greedy, progress=False)) == 1


def test_fallback_without_generate_batch_is_transformers(fresh_model, tiny_tokenizer, monkeypatch):
    _broken_run(monkeypatch, "tokens")
    monkeypatch.setattr("hf_synth.engine.paged.paged_generation_available", lambda model: False)
    engine = GenerationEngine(fresh_model, tiny_tokenizer, self_check=True, batch_size=3)
    assert engine.backend == "transformers" and engine.batch_size == 3  # a batch size given is kept


def test_a_batcher_that_fails_to_start_falls_back(fresh_model, tiny_tokenizer, monkeypatch, caplog):
    def broken_init(self, *args, **kwargs):
        raise RuntimeError("no kernel image is available for execution on the device")

    monkeypatch.setattr(ContinuousBatcher, "__init__", broken_init)
    with caplog.at_level(logging.WARNING, logger="hf_synth.engine"):
        engine = GenerationEngine(fresh_model, tiny_tokenizer, self_check=True)
    assert engine.backend == "transformers-paged"
    assert "failed to start (RuntimeError: no kernel image" in engine.backend_reason
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        f"Backend transformers-paged {FALLBACK}"
    ]
    with pytest.raises(RuntimeError, match="no kernel image"):  # named explicitly: the error stands
        GenerationEngine(fresh_model, tiny_tokenizer, backend="continuous", self_check=True)


def test_continuous_named_explicitly_runs_with_the_failure_logged(
    fresh_model, tiny_tokenizer, monkeypatch, caplog
):
    _broken_run(monkeypatch, "tokens")
    with caplog.at_level(logging.WARNING, logger="hf_synth.engine"):
        engine = GenerationEngine(fresh_model, tiny_tokenizer, backend="continuous", self_check=True)
    assert engine.backend == "continuous"
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "self-check FAILED" in warning and "running it as asked" in warning
    assert "self-check FAILED" in engine.describe()["backend_reason"]


def test_a_vllm_that_does_not_start_falls_back(tiny_model_dir, monkeypatch, caplog):
    """``auto`` picks vLLM on CUDA where it is installed; here it is picked on the CPU and fails to import."""
    from hf_synth.engine import EngineConfig
    from hf_synth.engine import engine as engine_module
    from hf_synth.engine.selection import BackendChoice, choose_backend

    def choose(requested, device_type, config, *, vllm_available=False, **kwargs):
        if vllm_available:
            return BackendChoice("vllm", "CUDA device and vllm is installed")
        return choose_backend(requested, device_type, config, **kwargs)

    monkeypatch.setattr(engine_module, "choose_backend", choose)
    monkeypatch.setattr(engine_module, "vllm_installed", lambda: True)
    with caplog.at_level(logging.WARNING, logger="hf_synth.engine"):
        engine = engine_module.load_engine(EngineConfig(model=str(tiny_model_dir), device="cpu"))
    assert engine.backend == "continuous"
    assert engine.backend_reason.startswith("vLLM failed to start (")
    (warning,) = [r.getMessage() for r in caplog.records]
    assert warning.startswith("Backend continuous instead of vllm: vLLM failed to start")
    with pytest.raises(Exception, match="(?i)vllm"):  # asked for by name: its error stands
        engine_module.load_engine(EngineConfig(model=str(tiny_model_dir), device="cpu", backend="vllm"))


def test_the_reason_reaches_the_card(fresh_model, tiny_tokenizer, monkeypatch):
    from datasets import Dataset

    from hf_synth.cards import build_card

    _broken_run(monkeypatch, "tokens")
    engine = GenerationEngine(fresh_model, tiny_tokenizer, model_id="tiny", self_check=True)
    rows = Dataset.from_list([{"instruction": "Name a river.", "input": "", "output": "Nile"}])
    card = str(build_card(rows, method="test", tags=[], steps=["one step"], engines=[engine.describe()]))
    assert "on the `transformers-paged` backend" in card
    assert "why this backend: Llama-family architecture (cpu runtime); fell back from continuous" in card


# ---------------------------------------------------------------------------------------- static mode
def test_batched_prefill_gives_the_tokens_of_one_prompt_at_a_time(tiny_tokenizer, monkeypatch):
    """Prompts of a prefill pass in one padded attention call (split in groups by the pair budget)."""
    eos = tiny_tokenizer.eos_token_id
    prompts = _prompt_ids(tiny_tokenizer, 9)
    outputs = {}
    for batched in (False, True):
        model = build_tiny_model(tiny_tokenizer)
        batcher = ContinuousBatcher(model, slots=4, eos_ids=[eos], static=True)
        batcher.bucket_steps, batcher.batched_prefill = True, batched
        calls: list[int] = []
        padded = batcher.prefill_padded
        batcher.prefill_padded = lambda items, cache, padded=padded, calls=calls: (
            calls.append(len(items)) or padded(items, cache)
        )
        if batched:
            monkeypatch.setattr(model_step_module, "PADDED_PREFILL_PAIRS", 3 * 64 * 64)
        requests = [Request(ids, seed=0) for ids in prompts]
        batcher.run(requests, SamplingParams(max_new_tokens=12, temperature=0.0))
        outputs[batched] = [r.tokens for r in requests]
        assert bool(calls) == batched and all(n >= 1 for n in calls)
        if batched:
            assert max(calls) > 1 and len(calls) > 1  # several prompts per call, and the budget split them
    assert outputs[True] == outputs[False]


def test_a_changed_batch_size_rebuilds_the_static_cache(tiny_tokenizer):
    model = build_tiny_model(tiny_tokenizer).to(torch.bfloat16)  # half precision: static on the CPU
    batcher = ContinuousBatcher(model, slots=4, eos_ids=[tiny_tokenizer.eos_token_id])
    assert batcher.static
    spec = SamplingParams(max_new_tokens=4, temperature=0.0)
    batcher.run([Request(ids, seed=0) for ids in _prompt_ids(tiny_tokenizer, 6)], spec)
    first = batcher.graphs
    assert first.slots == 4
    batcher.run([Request(ids, seed=0) for ids in _prompt_ids(tiny_tokenizer, 6)], spec)
    assert batcher.graphs is first  # same shape: kept
    batcher.batch_size = 2
    requests = [Request(ids, seed=0) for ids in _prompt_ids(tiny_tokenizer, 6)]
    batcher.run(requests, spec)
    assert batcher.graphs is not first and batcher.graphs.slots == 2
    assert all(len(r.tokens) >= 1 for r in requests)


def test_memory_budget_counts_kv_sampling_and_one_logits_buffer_per_row_bucket():
    # SmolLM2-135M in bfloat16: 30 layers, 3 key/value heads of 64, a 49,152-token vocabulary.
    per_slot = bytes_per_slot(30, 3, 64, 1024, 2, 49152)
    kv = 2 * 30 * 3 * 1024 * 64 * 2
    assert per_slot == kv + 7 * 49152 * 4
    # The row buckets' logits buffers really take at most the 3 rows per slot counted.
    for slots in (1, 7, 8, 9, 100, 256, 1000):
        buckets = row_buckets(slots)
        assert buckets == sorted({row_bucket(n, slots) for n in range(1, slots + 1)})
        assert sum(buckets) <= 3 * slots
    assert row_buckets(256) == [8, 16, 32, 64, 128, 256]
    assert slots_that_fit(100 * per_slot, per_slot, share=0.8) == 80
    assert slots_that_fit(per_slot, per_slot, share=0.8) == 0


# ---------------------------------------------------------------------------------------- kernels
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_fused_rms_norm_computes_transformers_norm(dtype):
    if not hasattr(torch.nn.functional, "rms_norm"):
        pytest.skip("torch without F.rms_norm")
    torch.manual_seed(0)
    x = (torch.randn(5, 64) * 3).to(dtype)
    weight = (torch.rand(64) + 0.5).to(dtype)
    expected = rms_norm(x, weight, 1e-5)
    assert torch.allclose(fused_rms_norm(x, weight, 1e-5).float(), expected.float(), rtol=1e-2, atol=1e-2)
    if dtype == torch.float32:
        assert torch.allclose(fused_rms_norm(x, weight, 1e-5), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("top_p", [1.0, 0.9, 0.3])
@pytest.mark.parametrize("top_k", [0, 7])
def test_sampling_without_host_reads_picks_the_same_tokens(top_p, top_k):
    torch.manual_seed(1)
    logits = torch.randn(16, 600) * 4
    logits[3, 10:] = float("-inf")  # a row whose tail has no mass
    spec = SamplingParams(max_new_tokens=1, temperature=0.8, top_p=top_p, top_k=top_k)
    uniforms = torch.rand(16)
    uniforms[0] = 0.9999999
    plain = choose(logits, spec, None, uniforms)
    sync_free = choose(logits, spec, None, uniforms, sync_free=True)
    assert torch.equal(plain, sync_free)


# ---------------------------------------------------------------------------------------- imports
MISSING_ON_GPU_IMAGE = (
    "datasets",
    "dill",
    "multiprocess",
    "nltk",
    "rouge_score",
    "datasketch",
    "gguf",
    "evaluate",
)


def test_load_engine_needs_nothing_beyond_torch_transformers_accelerate(tiny_model_dir):
    """In a process where the packages a bare GPU image lacks cannot be imported, load_engine loads a model
    and generates; neither those packages nor hf-synth's pipelines are imported."""
    script = textwrap.dedent(
        f"""
        import importlib.abc, json, sys

        class Missing(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {MISSING_ON_GPU_IMAGE!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}} (blocked: absent on a GPU image)")
                return None

        sys.meta_path.insert(0, Missing())
        from hf_synth.engine import EngineConfig, SamplingParams, load_engine

        engine = load_engine(EngineConfig(model={str(tiny_model_dir)!r}, device="cpu", backend="auto"))
        out = engine.generate(["Name a river."], SamplingParams(max_new_tokens=3), progress=False)
        hf_synth = sorted(m for m in sys.modules if m.startswith("hf_synth"))
        print(json.dumps({{"backend": engine.backend, "tokens": out[0].completion_tokens, "hf_synth": hf_synth}}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["backend"] == "continuous" and result["tokens"] >= 1
    # hf_synth.atomic: the standard-library atomic writes the engine's caches use
    allowed = ("hf_synth.engine", "hf_synth._lazy", "hf_synth.configuration", "hf_synth.progress", "hf_synth.atomic")
    outside = [m for m in result["hf_synth"] if m != "hf_synth" and not m.startswith(allowed)]
    assert outside == [], outside


def test_self_check_prompts_render_and_differ_in_length():
    tokenizer = build_tiny_tokenizer()
    lengths = {len(tokenizer(p)["input_ids"]) for p in CHECK_PROMPTS}
    assert len(lengths) == len(CHECK_PROMPTS)
