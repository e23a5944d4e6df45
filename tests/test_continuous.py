"""Continuous batching: same tokens as transformers' generate, same sampling semantics, prefix sharing."""

from __future__ import annotations

import mmap

import pytest
import torch
from transformers.generation.logits_process import (
    RepetitionPenaltyLogitsProcessor,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from hf_synth import GenerationEngine, SamplingParams
from hf_synth.engine.continuous import (
    ContinuousBatcher,
    Request,
    plan_prefixes,
    unsupported_reason,
)
from hf_synth.engine.continuous.sampler import choose

PREAMBLE = "Write one new task for a language model. Here are some examples of tasks people asked for:\n"


def _prompt_ids(tok, n: int) -> list[list[int]]:
    """Prompts of varied length, most sharing a long preamble, two sharing nothing."""
    topics = ["rivers", "taxes", "poems", "chess", "bread", "stars", "debt", "tea", "maps", "snow", "jazz"]
    prompts = [PREAMBLE + f"{i}. A question about {t}" + " and more" * (i % 4) for i, t in enumerate(topics)]
    prompts += ["Hello", "Sum two numbers: 3 and 4."]
    return [tok(p, add_special_tokens=False)["input_ids"] for p in prompts[:n]]


def _reference(model, ids: list[int], max_new: int, eos: int, penalty: float = 1.0) -> list[int]:
    with torch.inference_mode():
        out = model.generate(
            torch.tensor([ids]),
            max_new_tokens=max_new,
            do_sample=False,
            pad_token_id=eos,
            eos_token_id=eos,
            repetition_penalty=penalty,
            temperature=None,
            top_p=None,
            top_k=None,
        )
    tokens = out[0, len(ids) :].tolist()
    return tokens[: tokens.index(eos) + 1] if eos in tokens else tokens


@pytest.mark.parametrize("kernel", [True, False], ids=["compiled-attention", "torch-attention"])
@pytest.mark.parametrize("slots", [3, 16])
def test_greedy_tokens_equal_generate(tiny_model, tiny_tokenizer, kernel, slots):
    eos = tiny_tokenizer.eos_token_id
    batcher = ContinuousBatcher(tiny_model, slots=slots, eos_ids=[eos])
    batcher.use_kernel = kernel
    prompts = _prompt_ids(tiny_tokenizer, 13)
    requests = [Request(ids, seed=0) for ids in prompts]
    batcher.run(requests, SamplingParams(max_new_tokens=20, temperature=0.0))
    assert batcher.reused_prefix_tokens > 0  # the shared preamble was computed once
    for ids, request in zip(prompts, requests, strict=True):
        assert request.tokens == _reference(tiny_model, ids, 20, eos)


def test_greedy_with_repetition_penalty_equals_generate(tiny_model, tiny_tokenizer):
    eos = tiny_tokenizer.eos_token_id
    batcher = ContinuousBatcher(tiny_model, slots=4, eos_ids=[eos])
    prompts = _prompt_ids(tiny_tokenizer, 7)
    requests = [Request(ids, seed=0) for ids in prompts]
    batcher.run(requests, SamplingParams(max_new_tokens=15, repetition_penalty=1.5, temperature=0.0))
    for ids, request in zip(prompts, requests, strict=True):
        assert request.tokens == _reference(tiny_model, ids, 15, eos, penalty=1.5)


def test_stops_at_eos_and_at_max_new_tokens(tiny_model, tiny_tokenizer):
    prompts = _prompt_ids(tiny_tokenizer, 5)
    # Declare the token greedy decoding produces first as eos: every sequence stops after one token.
    first = [_reference(tiny_model, ids, 1, -1)[0] for ids in prompts]
    batcher = ContinuousBatcher(tiny_model, slots=2, eos_ids=[first[0]])
    requests = [Request(ids, seed=0) for ids in prompts]
    batcher.run(requests, SamplingParams(max_new_tokens=6, temperature=0.0))
    for token, request in zip(first, requests, strict=True):
        if token == first[0]:
            assert request.tokens == [token] and request.finished_by_stop
        else:
            assert first[0] in request.tokens or len(request.tokens) == 6
    requests = [Request(ids, seed=0) for ids in prompts]
    ContinuousBatcher(tiny_model, slots=2, eos_ids=[-1]).run(
        requests, SamplingParams(max_new_tokens=1, temperature=0.0)
    )
    assert all(len(r.tokens) == 1 and not r.finished_by_stop for r in requests)


def test_a_prompt_samples_the_same_text_whatever_shares_its_batch(tiny_model, tiny_tokenizer):
    prompts = _prompt_ids(tiny_tokenizer, 9)
    spec = SamplingParams(max_new_tokens=12, temperature=1.0, top_p=0.9)
    together = [Request(ids, seed=100 + i) for i, ids in enumerate(prompts)]
    ContinuousBatcher(tiny_model, slots=4, eos_ids=[-1]).run(together, spec)
    alone = Request(prompts[5], seed=105)
    ContinuousBatcher(tiny_model, slots=4, eos_ids=[-1]).run([alone], spec)
    assert alone.tokens == together[5].tokens
    other_seed = Request(prompts[5], seed=999)
    ContinuousBatcher(tiny_model, slots=4, eos_ids=[-1]).run([other_seed], spec)
    assert other_seed.tokens != together[5].tokens


def _hf_warp(logits, spec: SamplingParams, input_ids=None):
    if spec.repetition_penalty != 1.0:
        logits = RepetitionPenaltyLogitsProcessor(spec.repetition_penalty)(input_ids, logits)
    logits = logits / spec.temperature
    if spec.top_k:
        logits = TopKLogitsWarper(spec.top_k)(None, logits)
    if spec.top_p < 1:
        logits = TopPLogitsWarper(spec.top_p)(None, logits)
    return torch.softmax(logits, dim=-1)


@pytest.mark.parametrize(
    "spec",
    [
        SamplingParams(8, temperature=0.7, top_p=0.9),
        SamplingParams(8, temperature=1.3, top_k=50),
        SamplingParams(8, temperature=1.0, top_k=700, top_p=0.95),
        SamplingParams(8, temperature=0.5, repetition_penalty=1.3),
    ],
    ids=["top_p", "top_k", "top_k+top_p", "penalty"],
)
def test_sampling_distribution_matches_transformers_processors(spec):
    torch.manual_seed(0)
    vocab = 2000
    # Row 0 is peaked, row 1 nearly flat (its nucleus is larger than the top-p candidate shortlist).
    logits = torch.stack([torch.randn(vocab) * 4, torch.randn(vocab) * 0.01])
    input_ids = torch.randint(0, vocab, (2, 30))
    seen = torch.zeros(2, vocab, dtype=torch.bool).scatter_(1, input_ids, True)
    expected = _hf_warp(logits.clone(), spec, input_ids)
    draws = 4000
    counts = torch.zeros(2, vocab)
    generator = torch.Generator().manual_seed(1)
    for _ in range(draws // 100):
        batch = logits.repeat_interleave(100, dim=0)
        chosen = choose(batch, spec, seen.repeat_interleave(100, dim=0), torch.rand(200, generator=generator))
        counts.scatter_add_(1, chosen.view(2, 100), torch.ones(2, 100))
    # Never a token the processors rule out, and frequencies within 5 standard errors.
    assert not bool(((expected == 0) & (counts > 0)).any())
    p = expected
    stderr = torch.sqrt(p * (1 - p) / draws)
    assert bool(((counts / draws - p).abs() <= 5 * stderr + 1e-3).all())


def test_greedy_choice_and_penalty_match_processors():
    torch.manual_seed(3)
    logits = torch.randn(3, 50)
    input_ids = torch.randint(0, 50, (3, 8))
    seen = torch.zeros(3, 50, dtype=torch.bool).scatter_(1, input_ids, True)
    spec = SamplingParams(4, temperature=0, repetition_penalty=1.7)
    expected = RepetitionPenaltyLogitsProcessor(1.7)(input_ids, logits.clone()).argmax(-1)
    assert torch.equal(choose(logits, spec, seen, None), expected)


def test_plan_prefixes_groups_prompts_that_share_a_preamble():
    a = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    prompts = [a + [20, 21], [5, 5, 5], a + [30], a[:9] + [40, 41], [5, 5, 6]]
    order, runs = plan_prefixes(prompts, min_length=4)
    assert sorted(order) == list(range(5))
    covered = [i for start, stop, _ in runs for i in order[start:stop]]
    assert sorted(covered) == list(range(5))
    shared = {tuple(sorted(order[s:e])): length for s, e, length in runs}
    # The three "a" prompts share 9 tokens; the two short ones share only 2 (< min_length).
    assert shared[(0, 2, 3)] == 9
    for group, length in shared.items():
        if length:
            assert all(len(prompts[i]) > length for i in group)
            assert len({tuple(prompts[i][:length]) for i in group}) == 1
    assert all(length == 0 for group, length in shared.items() if 1 in group or 4 in group)


def test_engine_uses_continuous_batching_and_reports_it(tiny_model, tiny_tokenizer):
    engine = GenerationEngine(model=tiny_model, tokenizer=tiny_tokenizer, model_id="tiny", batch_size=4)
    assert engine.backend == "continuous" and isinstance(engine.runner, ContinuousBatcher)
    assert engine.describe() == {
        "model": "tiny",
        "backend": "continuous",
        "dtype": "float32",
        "device": "cpu",
        "batch_size": 4,
        "backend_reason": "Llama-family architecture (cpu runtime)",
    }
    out = engine.generate(["Name a river.", "Name a tree."], SamplingParams(max_new_tokens=5, temperature=0))
    assert all(o.completion_tokens >= 1 for o in out)
    assert engine.stats.completion_tokens == sum(o.completion_tokens for o in out)


def test_unsupported_architectures_fall_back_or_are_refused(tiny_model, tiny_tokenizer, monkeypatch):
    monkeypatch.setattr(tiny_model.config, "model_type", "gpt2")
    assert "gpt2" in unsupported_reason(tiny_model)
    engine = GenerationEngine(model=tiny_model, tokenizer=tiny_tokenizer, model_id="tiny")
    assert engine.backend == "transformers" and not isinstance(engine.runner, ContinuousBatcher)
    with pytest.raises(ValueError, match="use 'transformers'"):
        GenerationEngine(model=tiny_model, tokenizer=tiny_tokenizer, model_id="tiny", backend="continuous")


def test_kv_cache_pages_are_committed_only_when_used():
    from hf_synth.engine.continuous.kv_cache import lazy_zeros

    from .conftest import committed_pages

    tensor, buffer = lazy_zeros((256, 1024, 1024), torch.float32, torch.device("cpu"))  # 1 GiB, all zero
    assert float(tensor[:, :8].sum()) == 0.0 and committed_pages(tensor) == 0  # read, not committed
    tensor[:16] = 1.0  # 64 MiB written
    assert committed_pages(tensor) == 16 * 1024 * 1024 * 4 // mmap.PAGESIZE  # exactly the written pages
    del tensor
    buffer.close()
