"""The compiled CPU kernels of the decode loop against plain PyTorch arithmetic."""

from __future__ import annotations

import mmap
import os
import tempfile
import time
from pathlib import Path

import pytest
import torch

from hf_synth.engine import SamplingParams
from hf_synth.engine.continuous import ContinuousBatcher, Request
from hf_synth.engine.continuous.kv_cache import KVCache, lazy_zeros
from hf_synth.engine.continuous.model_step import rms_norm, rotate
from hf_synth.engine.cpu import decode_attention as attention_module
from hf_synth.engine.cpu.decode_attention import decode_attention
from hf_synth.engine.cpu.fused import add_rms_norm, rope, rope_store

from .conftest import committed_pages


def _rope_tables(rows: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    angles = torch.rand(rows, dim // 2) * 50
    angles = torch.cat([angles, angles], dim=-1)  # rotary tables repeat their first half
    return angles.cos(), angles.sin()


@pytest.mark.parametrize("with_delta", [True, False])
def test_add_rms_norm_matches_the_torch_norm(with_delta):
    torch.manual_seed(0)
    x = torch.randn(7, 96) * 3
    delta = torch.randn(7, 96) if with_delta else None
    weight = torch.rand(96) + 0.5
    expected_x = x + delta if with_delta else x.clone()
    expected = rms_norm(expected_x, weight, 1e-5)
    out = add_rms_norm(x, delta, weight, 1e-5, torch.empty_like(x))
    torch.testing.assert_close(x, expected_x)  # the residual is added in place
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_rope_and_rope_store_match_the_torch_rotation():
    torch.manual_seed(0)
    rows, n_heads, n_kv, dim = 5, 6, 2, 16
    qkv = torch.randn(rows, (n_heads + 2 * n_kv) * dim)
    cos, sin = _rope_tables(rows, dim)
    q_ref = rotate(qkv[:, : n_heads * dim].view(rows, n_heads, dim), cos[:, None], sin[:, None])
    k_ref = rotate(
        qkv[:, n_heads * dim : (n_heads + n_kv) * dim].view(rows, n_kv, dim), cos[:, None], sin[:, None]
    )
    v_ref = qkv[:, (n_heads + n_kv) * dim :].view(rows, n_kv, dim)

    q, k, v = rope(qkv, cos, sin, n_heads, n_kv)
    torch.testing.assert_close(q, q_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(k, k_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(v, v_ref)

    k_cache, v_cache = torch.zeros(rows, n_kv, 10, dim), torch.zeros(rows, n_kv, 10, dim)
    local = torch.tensor([0, 3, 9, 1, 4])
    q_grouped = rope_store(qkv, cos, sin, k_cache, v_cache, local, n_heads, n_kv)
    torch.testing.assert_close(q_grouped, q_ref.view(rows, n_kv, n_heads // n_kv, dim), rtol=1e-5, atol=1e-5)
    rows_index = torch.arange(rows)
    torch.testing.assert_close(k_cache[rows_index, :, local], k_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(v_cache[rows_index, :, local], v_ref)
    untouched = torch.ones(rows, n_kv, 10, dtype=torch.bool)
    untouched[rows_index, :, local] = False
    assert not k_cache[untouched].any() and not v_cache[untouched].any()  # nothing else written


def _reference_attention(q, k_slots, v_slots, lengths, k_arena, v_arena, offsets, prefix_lengths, scale):
    rows, kv_heads, group, dim = q.shape
    out = torch.empty_like(q)
    for r in range(rows):
        p, o, n = int(prefix_lengths[r]), int(offsets[r]), int(lengths[r])
        keys = torch.cat([k_arena[o : o + p].transpose(0, 1), k_slots[r, :, :n]], dim=1)  # (kv, p+n, dim)
        values = torch.cat([v_arena[o : o + p].transpose(0, 1), v_slots[r, :, :n]], dim=1)
        weights = torch.softmax(torch.einsum("hgd,htd->hgt", q[r].double(), keys.double()) * scale, dim=-1)
        out[r] = torch.einsum("hgt,htd->hgd", weights, values.double()).float()
    return out


@pytest.mark.parametrize("kv_heads,group,dim", [(1, 1, 8), (2, 2, 16), (3, 3, 64), (1, 4, 32)])
@pytest.mark.parametrize("spread", [1.0, 40.0], ids=["smooth", "peaked"])
def test_decode_attention_matches_softmax_attention(kv_heads, group, dim, spread):
    torch.manual_seed(kv_heads * 100 + group * 10 + dim)
    rows, capacity, arena = 6, 40, 30
    q = torch.randn(rows, kv_heads, group, dim) * spread / dim**0.5
    k_slots, v_slots = torch.randn(rows, kv_heads, capacity, dim), torch.randn(rows, kv_heads, capacity, dim)
    k_arena, v_arena = torch.randn(arena, kv_heads, dim), torch.randn(arena, kv_heads, dim)
    lengths = torch.tensor([1, 5, 40, 17, 3, 29])
    offsets = torch.tensor([0, 0, 10, 10, 4, 0])
    prefix_lengths = torch.tensor([0, 12, 20, 20, 0, 30])  # rows with and without a shared prefix
    args = (q, k_slots, v_slots, lengths, k_arena, v_arena, offsets, prefix_lengths, dim**-0.5)
    torch.testing.assert_close(decode_attention(*args), _reference_attention(*args), rtol=2e-5, atol=2e-5)


def test_decode_attention_kernel_source_is_cached_per_shape(tmp_path, monkeypatch):
    monkeypatch.setattr(attention_module, "_kernel_folder", lambda: tmp_path)
    monkeypatch.setattr(attention_module, "_KERNELS", {})
    kernel = attention_module._kernel(2, 5, 8)
    files = sorted(p.name for p in tmp_path.glob("decode_attention_2x5x8_*.py"))
    assert len(files) == 1
    text = (tmp_path / files[0]).read_text()
    assert "GROUP, DIM = 2, 5, 8" in text and "a4 += qs[4, i] * k" in text  # one accumulator per head
    assert attention_module._kernel(2, 5, 8) is kernel  # compiled once per process


def test_clearing_a_slot_returns_its_pages_and_reads_zero():
    class Holder:
        clear = KVCache.clear

    holder = Holder()
    shape = (4, 3, 2, 4096, 64)  # layers, slots, kv heads, capacity, dim: 2 MiB per layer and slot
    holder.k_cache, k_buffer = lazy_zeros(shape, torch.float32, torch.device("cpu"))
    holder.v_cache, v_buffer = lazy_zeros(shape, torch.float32, torch.device("cpu"))
    holder._slot_buffers = [k_buffer, v_buffer]
    holder.k_cache[:, 1] = 1.0
    holder.v_cache[:, 1] = 2.0
    holder.k_cache[:, 2] = 3.0
    per_slot = 2 * 4096 * 64 * 4 // mmap.PAGESIZE  # one layer's part of one slot, in pages
    slot = [[holder.k_cache[layer, s] for layer in range(4)] for s in range(3)]
    assert [committed_pages(t) for t in slot[1]] == [per_slot] * 4  # written: committed
    holder.clear(1)
    assert [committed_pages(t) for t in slot[1]] == [0] * 4  # every page of slot 1 handed back
    assert [committed_pages(t) for t in slot[2]] == [per_slot] * 4  # the neighbour keeps its pages
    assert sum(committed_pages(holder.v_cache[layer, 1]) for layer in range(4)) == 0
    del slot
    assert not holder.k_cache[:, 1].any() and not holder.v_cache[:, 1].any()
    assert bool((holder.k_cache[:, 2] == 3.0).all())  # the neighbouring slot is untouched
    del holder.k_cache, holder.v_cache
    for buffer in (k_buffer, v_buffer):
        assert isinstance(buffer, mmap.mmap)
        buffer.close()


@pytest.mark.parametrize("why", ["no packing op", "too little memory"])
def test_unpacked_weights_give_the_same_greedy_tokens(tiny_model, tiny_tokenizer, monkeypatch, why):
    """Without packing the fused weights are views into the model's parameters (no copy), same tokens."""
    from hf_synth.engine.continuous import packing
    from hf_synth.engine.cpu import tuning as cpu_tuning

    # Packed everywhere it is offered, whatever this machine's timing would choose.
    monkeypatch.setattr(
        cpu_tuning,
        "choose_methods",
        lambda shapes, rows, dtype, methods, pack: dict.fromkeys(shapes, methods[0]),
    )
    prompts = [
        tiny_tokenizer(p, add_special_tokens=False)["input_ids"] for p in ["Name a river.", "Count to 3"]
    ]
    eos = tiny_tokenizer.eos_token_id
    packed = ContinuousBatcher(tiny_model, slots=2, eos_ids=[eos])
    if why == "no packing op":
        monkeypatch.setattr(packing, "onednn_packing", lambda weight, rows: None)
    else:  # the copy would not fit: packing is skipped
        monkeypatch.setattr(packing, "memory_available", lambda: packing.projection_bytes(tiny_model))
    plain = ContinuousBatcher(tiny_model, slots=2, eos_ids=[eos])
    assert packed.packed_weights and not plain.packed_weights
    assert (
        plain.layers[0].qkv.weight.data_ptr() == tiny_model.model.layers[0].self_attn.q_proj.weight.data_ptr()
    )
    results = []
    for batcher in (packed, plain):
        requests = [Request(ids, seed=0) for ids in prompts]
        batcher.run(requests, SamplingParams(max_new_tokens=12, temperature=0.0))
        results.append([r.tokens for r in requests])
    assert results[0] == results[1]


def test_decode_attention_kernel_compiles_without_a_writable_cache(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setattr(attention_module, "_kernel_folder", lambda: blocker / "kernels")
    monkeypatch.setattr(attention_module, "_KERNELS", {})
    kernel = attention_module._kernel(1, 1, 8)
    assert kernel.py_func.__code__.co_filename.startswith(tempfile.gettempdir())
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 1, 1, 8), torch.randn(2, 1, 5, 8), torch.randn(2, 1, 5, 8)
    arena = torch.zeros(1, 1, 8)
    zeros, lengths = torch.zeros(2, dtype=torch.long), torch.tensor([5, 3])
    args = (q, k, v, lengths, arena, arena, zeros, zeros, 0.35)
    torch.testing.assert_close(decode_attention(*args), _reference_attention(*args), rtol=2e-5, atol=2e-5)


def test_cpu_tuning_times_each_shape_once_per_machine_and_uses_the_fastest(
    tiny_model, tiny_tokenizer, tmp_path, monkeypatch
):
    """Each projection shape runs with the method measured fastest on this machine; the choice is cached
    per machine, so a second engine does not time anything."""
    from hf_synth.engine.continuous import packing
    from hf_synth.engine.cpu import tuning as cpu_tuning

    monkeypatch.setattr(cpu_tuning, "tuning_file", lambda: tmp_path / "cpu_tuning.json")
    timed = []

    def fake_timing(shape, rows, dtype, methods, pack):
        timed.append(shape)
        fastest = "torch" if shape[0] == shape[1] else "onednn"  # square (o) -> F.linear, others oneDNN
        return {m: (1.0 if m == fastest else 2.0) for m in methods}

    monkeypatch.setattr(cpu_tuning, "time_methods", fake_timing)
    eos = tiny_tokenizer.eos_token_id
    batcher = ContinuousBatcher(tiny_model, slots=2, eos_ids=[eos])
    assert batcher.methods == {
        "qkv": "onednn",
        "o": "torch",
        "gate_up": "onednn",
        "down": "onednn",
        "lm_head": "onednn",
    }
    assert batcher.layers[0].o.method == "torch" and not batcher.packed_weights
    assert len(timed) == 5
    ContinuousBatcher(tiny_model, slots=2, eos_ids=[eos])
    assert len(timed) == 5  # read from the cache
    ContinuousBatcher(tiny_model, slots=3, eos_ids=[eos])
    assert len(timed) == 10  # another row count is another measurement
    prompt = tiny_tokenizer("Name a river.", add_special_tokens=False)["input_ids"]
    request = Request(prompt, seed=0)
    batcher.run([request], SamplingParams(max_new_tokens=10, temperature=0.0))
    with torch.inference_mode():
        reference = tiny_model.generate(
            torch.tensor([prompt]), max_new_tokens=10, do_sample=False, pad_token_id=eos, eos_token_id=eos
        )[0, len(prompt) :].tolist()
    if eos in reference:
        reference = reference[: reference.index(eos) + 1]
    assert request.tokens == reference  # the whole sequence, as long as generate's
    assert tuple(batcher.methods) == packing.PROJECTIONS


def test_cpu_tuning_really_times_the_methods(tmp_path, monkeypatch):
    from hf_synth.engine.cpu import tuning as cpu_tuning

    calls = {"onednn": 0, "torch": 0}
    runner = cpu_tuning._runner

    def counted(method, weight, rows, pack):
        run = runner(method, weight, rows, pack)

        def call(x):
            calls[method] += 1
            if method == "torch":
                time.sleep(0.002)  # a sleep never ends early: a lower bound the timing must show
            return run(x)

        return call

    monkeypatch.setattr(cpu_tuning, "_runner", counted)
    seconds = cpu_tuning.time_methods((64, 32), 8, torch.float32, ("onednn", "torch"), None)
    inner = 20  # 2e7 // (2 * 8 * 64 * 32) calls per timing, capped at 20
    assert calls == {m: 1 + cpu_tuning.REPEATS * inner for m in calls}  # a warm-up, then every repeat
    assert set(seconds) == {"onednn", "torch"} and seconds["torch"] >= 0.002 and seconds["onednn"] > 0


def test_kernels_that_fail_their_self_check_are_not_used(tiny_model, tiny_tokenizer, monkeypatch, caplog):
    from hf_synth.engine.continuous import batcher as batcher_module
    from hf_synth.engine.cpu import decode_attention

    assert decode_attention.check_kernels(1, 2, 16) is None  # they work here
    monkeypatch.setattr(
        decode_attention, "decode_attention", lambda *args: torch.zeros_like(args[0])
    )  # a kernel that computes something else
    assert "disagrees" in decode_attention.check_kernels(1, 2, 16)
    monkeypatch.setattr(batcher_module, "check_kernels", lambda *a: "LoweringError: cannot compile")
    batcher = ContinuousBatcher(tiny_model, slots=2, eos_ids=[tiny_tokenizer.eos_token_id])
    assert not batcher.use_kernel
    assert "Compiled CPU kernels unavailable (LoweringError: cannot compile)" in caplog.text


def test_cpu_tuning_keeps_the_first_method_unless_another_is_clearly_faster(tmp_path, monkeypatch):
    from hf_synth.engine.cpu import tuning as cpu_tuning

    monkeypatch.setattr(cpu_tuning, "tuning_file", lambda: tmp_path / "cpu_tuning.json")
    timings = {(8, 8): {"packed": 1.05, "torch": 1.0}, (16, 8): {"packed": 1.3, "torch": 1.0}}
    monkeypatch.setattr(cpu_tuning, "time_methods", lambda shape, *a: timings[shape])
    chosen = cpu_tuning.choose_methods(
        {"a": (8, 8), "b": (16, 8)}, 4, torch.float32, ("packed", "torch"), None
    )
    assert chosen == {"a": "packed", "b": "torch"}  # 5% is noise, 30% is not


def test_tuning_and_kernels_live_in_the_sessions_cache(tiny_model, tiny_tokenizer):
    """The suite's engines time and compile into this session's HF_SYNTH_CACHE (tests/conftest.py), never
    into the user's ~/.cache/hf_synth, where a stale choice would decide which projection path runs."""
    from hf_synth.engine.cpu import tuning as cpu_tuning

    from .conftest import SESSION_CACHE

    session = Path(SESSION_CACHE)
    assert os.environ["HF_SYNTH_CACHE"] == SESSION_CACHE and session != Path.home() / ".cache" / "hf_synth"
    assert cpu_tuning.tuning_file() == session / "cpu_tuning.json"
    assert attention_module._kernel_folder() == session / "kernels"
    ContinuousBatcher(tiny_model, slots=2, eos_ids=[tiny_tokenizer.eos_token_id])
    attention_module._kernel(1, 2, 16)
    assert cpu_tuning.tuning_file().is_file()
    assert list((session / "kernels").glob("decode_attention_1x2x16_*.py"))
