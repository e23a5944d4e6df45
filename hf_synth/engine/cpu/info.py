"""What CPU the engine runs on: model name, detected instruction sets, and what the libraries really use.

The CPU runtime's choices (packed or unpacked weights per shape, slot count) are made from this and from
a short calibration (:mod:`.tuning`), and every benchmark prints it beside its figures. An AVX-512
host can be made to behave like an AVX2 one for torch, oneDNN, MKL and numba with the variables of
:data:`AVX2_ENVIRONMENT` (set before the process starts; :func:`cpu_info` reports whether they took).
"""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import asdict, dataclass

#: Environment variables that cap torch (ATen), oneDNN, MKL and numba at AVX2 on an AVX-512 host.
AVX2_ENVIRONMENT = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "NUMBA_CPU_NAME": "haswell",
}

#: The ISA names this module reports, best first.
ISA_ORDER = ("amx", "avx512_bf16", "avx512", "avx2", "neon", "baseline")


@dataclass(frozen=True)
class CPUInfo:
    """A CPU and what runs on it.

    Attributes:
        model: The model name (``/proc/cpuinfo``, else ``platform.processor()``).
        machine: ``x86_64``, ``aarch64``...
        detected_isa: The best instruction set the CPU has (one of :data:`ISA_ORDER`).
        used_isa: The best one the libraries use after the caps in the environment.
        torch_capability: ATen's kernel level (``torch.backends.cpu.get_cpu_capability()``).
        numba_target: The CPU numba compiles the kernels for.
        caps: The capping variables set in the environment.
        threads: torch's intra-op threads.
        bf16: The CPU has native bfloat16 arithmetic (AVX-512 BF16 or AMX).
    """

    model: str
    machine: str
    detected_isa: str
    used_isa: str
    torch_capability: str
    numba_target: str
    caps: dict
    threads: int
    bf16: bool

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        capped = f", capped by {', '.join(f'{k}={v}' for k, v in self.caps.items())}" if self.caps else ""
        return (
            f"{self.model} ({self.machine}): detected {self.detected_isa}, used {self.used_isa} "
            f"(torch {self.torch_capability}, numba {self.numba_target}{capped}), {self.threads} threads"
        )


def _cpuinfo() -> tuple[str, frozenset[str]]:
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key in ("model name", "hardware", "cpu model") and not model:
                    model = value.strip()
                elif key in ("flags", "features"):
                    flags.update(value.split())
    except OSError:
        pass
    return model or platform.processor() or platform.machine(), frozenset(flags)


def detect_isa(flags: frozenset[str], machine: str) -> str:
    """The best instruction set in :data:`ISA_ORDER` that ``flags`` (``/proc/cpuinfo``) show."""
    if "amx_bf16" in flags:
        return "amx"
    if "avx512_bf16" in flags:
        return "avx512_bf16"
    if {"avx512f", "avx512bw", "avx512vl"} <= flags:
        return "avx512"
    if "avx2" in flags and "fma" in flags:
        return "avx2"
    if machine in ("aarch64", "arm64") or "asimd" in flags:
        return "neon"
    return "baseline"


def _capped(isa: str, torch_capability: str, caps: dict) -> str:
    """The ISA the libraries use: the detected one, lowered by ATen's level and the cap variables."""
    if isa in ("neon", "baseline"):
        return isa
    level = ISA_ORDER.index(isa)
    capability = torch_capability.upper()
    if capability == "AVX2" or any(v.upper().startswith("AVX2") for v in caps.values()):
        level = max(level, ISA_ORDER.index("avx2"))
    elif capability == "DEFAULT":
        level = ISA_ORDER.index("baseline")
    return ISA_ORDER[level]


@functools.cache
def cpu_info() -> CPUInfo:
    """This process's :class:`CPUInfo` (computed once)."""
    import torch

    model, flags = _cpuinfo()
    machine = platform.machine()
    detected = detect_isa(flags, machine)
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # pragma: no cover - very old torch
        capability = "unknown"
    caps = {k: os.environ[k] for k in AVX2_ENVIRONMENT if os.environ.get(k)}
    try:
        import numba

        numba_target = numba.config.CPU_NAME or "host"
        if numba_target == "host":
            import llvmlite.binding as llvm

            numba_target = f"host ({llvm.get_host_cpu_name()})"
    except ImportError:  # pragma: no cover - numba is a dependency
        numba_target = "none"
    used = _capped(detected, capability, caps)
    return CPUInfo(
        model=model,
        machine=machine,
        detected_isa=detected,
        used_isa=used,
        torch_capability=capability,
        numba_target=numba_target,
        caps=caps,
        threads=torch.get_num_threads(),
        bf16=used in ("amx", "avx512_bf16"),
    )
