"""CPU detection, and the AVX2 caps that make an AVX-512 host behave like an AVX2 one."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from hf_synth.engine.cpu.info import AVX2_ENVIRONMENT, cpu_info, detect_isa


@pytest.mark.parametrize(
    ("flags", "machine", "expected"),
    [
        ({"avx2", "fma", "avx512f", "avx512bw", "avx512vl", "amx_bf16", "avx512_bf16"}, "x86_64", "amx"),
        ({"avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16"}, "x86_64", "avx512_bf16"),
        ({"avx2", "fma", "avx512f", "avx512bw", "avx512vl"}, "x86_64", "avx512"),
        ({"avx2", "fma", "avx512f"}, "x86_64", "avx2"),  # AVX-512 foundation alone is not enough
        ({"avx2", "fma"}, "x86_64", "avx2"),
        ({"sse4_2"}, "x86_64", "baseline"),
        ({"fp", "asimd"}, "aarch64", "neon"),
    ],
)
def test_isa_detection_from_cpu_flags(flags, machine, expected):
    assert detect_isa(frozenset(flags), machine) == expected


def test_this_cpu_is_described():
    info = cpu_info()
    assert info.model and info.threads >= 1
    assert info.detected_isa in ("amx", "avx512_bf16", "avx512", "avx2", "neon", "baseline")
    assert "detected" in info.summary()


_PROBE = """
import json, torch
from hf_synth.engine.cpu.info import cpu_info
torch.ops.mkldnn._linear_pointwise(torch.randn(4, 64), torch.randn(32, 64), None, "none", [], "")
print("PROBE " + json.dumps(cpu_info().to_dict()))
"""


def test_avx2_caps_take_effect_for_torch_onednn_and_numba():
    """With the AVX2 variables set, torch reports AVX2, oneDNN says it runs AVX2 code, numba targets
    haswell, and the engine reports AVX2 as the ISA it uses (on AVX-512 hosts too)."""
    env = {**os.environ, **AVX2_ENVIRONMENT, "ONEDNN_VERBOSE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("PROBE "))[6:])
    if info["detected_isa"] not in ("avx2", "avx512", "avx512_bf16", "amx"):
        pytest.skip(f"not an x86 CPU with AVX2 ({info['detected_isa']})")
    assert info["torch_capability"] == "AVX2"
    assert info["numba_target"] == "haswell"
    assert info["used_isa"] == "avx2" and info["caps"] == AVX2_ENVIRONMENT
    onednn = [line for line in proc.stdout.splitlines() if ",isa:" in line]
    assert onednn and "AVX2" in onednn[0] and "512" not in onednn[0]
