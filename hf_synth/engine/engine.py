"""The generation engine: chat prompts in, completions out, over any local transformers causal LM.

Everything in hf-synth that asks a model for text goes through an :class:`~hf_synth.engine.Engine`;
:class:`GenerationEngine` is the one that holds a transformers model and tokenizer and hands the token
work to the backend chosen by name (:mod:`hf_synth.engine.selection`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .default_model import DEFAULT_MODEL_ID, default_model_path
from .engine_config import EngineConfig, SamplingParams
from .protocol import EngineStats, GenerationOutput, GenerationProgress, Prompt, format_chat_prompt
from .runner import Request, derive_seed
from .selection import choose_backend, default_batch_size, make_runner, vllm_installed

logger = logging.getLogger(__name__)

__all__ = [
    "EngineStats",
    "GenerationEngine",
    "GenerationOutput",
    "Prompt",
    "format_chat_prompt",
    "load_engine",
]


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1


def model_id_of(config: EngineConfig) -> str:
    """The model id an engine for ``config`` records (in rows, cards and checkpoint fingerprints), known
    before anything loads; a local folder that does not exist is a ``FileNotFoundError`` here."""
    if config.uses_server:
        return config.model or ""  # "": the server names it when asked (see ServerEngine.from_config)
    if config.model is None:
        return DEFAULT_MODEL_ID
    if not Path(config.model).expanduser().exists() and _looks_like_path(config.model):
        raise FileNotFoundError(
            f"Model folder {config.model!r} does not exist; pass an existing folder or a Hub id "
            "such as HuggingFaceTB/SmolLM2-360M-Instruct."
        )
    return config.model


def _model_source(config: EngineConfig) -> tuple[str | Path, str]:
    """Where to load ``config.model`` from, and the id recorded for it."""
    model_id = model_id_of(config)
    if config.model is None:
        return default_model_path(), model_id
    local = Path(config.model).expanduser()
    return (local if local.exists() else config.model), model_id


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """``"auto"``: bfloat16 on a GPU, float32 on the CPU; otherwise the named torch dtype."""
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, name)


@dataclass
class GenerationEngine:
    """Batched chat generation over a transformers causal LM and its tokenizer.

    Build it with :meth:`from_config` (loads by path, Hub id or the embedded default) or directly from a
    model and tokenizer you already hold (tests build tiny random models this way). ``backend`` is one of
    :data:`~hf_synth.engine.BACKENDS` except ``vllm``; ``auto`` is resolved at construction and the
    attribute then names the backend that runs. ``batch_size=None`` takes the backend's default.
    """

    model: Any
    tokenizer: Any
    model_id: str = "unknown"
    batch_size: int | None = None
    backend: str = "auto"
    stats: EngineStats = field(default_factory=EngineStats)

    def __post_init__(self) -> None:
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            if self.tokenizer.eos_token_id is None:
                raise ValueError(
                    f"Tokenizer of {self.model_id} has neither a pad nor an eos token; set tokenizer.pad_token."
                )
            logger.info("Tokenizer of %s has no pad token; padding with its eos token", self.model_id)
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model.eval()
        if self.backend == "vllm":
            raise ValueError(
                "GenerationEngine runs transformers models; load vLLM with "
                "GenerationEngine.from_config(EngineConfig(backend='vllm'))"
            )
        choice = choose_backend(self.backend, self.device.type, getattr(self.model, "config", None))
        self.backend = choice.name
        if self.batch_size is None:
            self.batch_size = default_batch_size(self.backend, self.device.type)
        self.runner = make_runner(
            self.backend,
            self.model,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_ids=self._eos_ids(),
            batch_size=self.batch_size,
        )
        logger.info(
            "Engine: %s with backend %s (%s), %s on %s, batch size %d",
            self.model_id,
            self.backend,
            choice.reason,
            self.dtype,
            self.device,
            self.batch_size,
        )

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_config(cls, config: EngineConfig | None = None):
        """Load the model named in ``config`` (or the embedded default) on the device accelerate picks.

        Returns a :class:`GenerationEngine`, or a :class:`~hf_synth.engine.vllm_engine.VLLMEngine` (same
        :class:`~hf_synth.engine.Engine` interface) when the backend is ``vllm``: asked for, or ``auto``
        on a GPU where vllm is installed.
        """
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        from .distributed import process_state

        config = config or EngineConfig()
        if config.uses_server:
            from .server import ServerEngine

            return ServerEngine.from_config(config)
        device = torch.device(config.device) if config.device else process_state().device
        source, model_id = _model_source(config)
        kwargs = {"revision": config.revision, "trust_remote_code": config.trust_remote_code}
        model_config = AutoConfig.from_pretrained(source, **kwargs)
        choice = choose_backend(config.backend, device.type, model_config, vllm_available=vllm_installed())
        if choice.name == "vllm":
            from .vllm_engine import VLLMEngine

            logger.info("Backend vllm (%s)", choice.reason)
            return VLLMEngine.from_config(config)
        dtype = resolve_dtype(config.dtype, device)
        started = time.perf_counter()
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kwargs).to(device)
        logger.info("Loaded %s on %s in %.1fs", model_id, device, time.perf_counter() - started)
        return cls(
            model=model,
            tokenizer=tokenizer,
            model_id=model_id,
            batch_size=config.batch_size,
            backend=config.backend,  # decided again, identically, with its reason logged once
        )

    # ------------------------------------------------------------------ description
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def describe(self) -> dict[str, Any]:
        """The model, backend, dtype and device that really run (for ``summary.json`` and the card)."""
        return {
            "model": self.model_id,
            "backend": self.backend,
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": str(self.device),
            "batch_size": self.batch_size,
        }

    # ------------------------------------------------------------------ prompts
    def format_prompt(self, prompt: Prompt) -> str:
        """Render a prompt into the text the model sees (chat template, or plain text without one)."""
        return format_chat_prompt(self.tokenizer, prompt, self.model_id)

    def _eos_ids(self) -> list[int]:
        eos = getattr(self.model.generation_config, "eos_token_id", None)
        if eos is None:
            eos = self.tokenizer.eos_token_id
        ids = [eos] if isinstance(eos, int) else list(eos or [])
        if not ids:
            raise ValueError(f"{self.model_id} defines no eos token; generation could never stop early")
        return ids

    # ------------------------------------------------------------------ generation
    def generate(
        self,
        prompts: Sequence[Prompt],
        sampling: SamplingParams | None = None,
        *,
        desc: str = "Generating",
        progress: bool = True,
        on_output: Callable[[int, GenerationOutput], None] | None = None,
    ) -> list[GenerationOutput]:
        """Generate one completion per prompt, in the order of ``prompts``; ``on_output(index, output)``
        is called for each as soon as its sequence finishes.

        Every prompt is seeded from ``sampling.seed`` and its own text, so the same prompt with the same
        seed gives the same text however often a run is restarted (with the ``continuous`` backend also
        whichever prompts share its batch).
        """
        sampling = sampling or SamplingParams()
        if not prompts:
            return []
        texts = [self.format_prompt(p) for p in prompts]
        has_template = bool(getattr(self.tokenizer, "chat_template", None))
        encoded = self.tokenizer(texts, add_special_tokens=not has_template)["input_ids"]
        if any(not ids for ids in encoded):
            raise ValueError("A prompt rendered to no tokens; every prompt needs some text")
        requests = [
            Request(ids, seed=derive_seed(sampling.seed, [text]), index=i)
            for i, (ids, text) in enumerate(zip(encoded, texts, strict=True))
        ]
        outputs: list[GenerationOutput | None] = [None] * len(requests)
        self.runner.batch_size = self.batch_size
        bar = GenerationProgress(len(texts), desc, progress)

        def on_finish(request: Request) -> None:
            output = outputs[request.index] = self._output(request)
            if on_output is not None:
                on_output(request.index, output)
            bar.finished(len(request.tokens))

        try:
            self.runner.run(requests, sampling, on_finish=on_finish)
        finally:
            bar.close()
        self.batch_size = self.runner.batch_size  # an out-of-memory back-off lasts for later calls
        outputs = [
            out if out is not None else self._output(r) for out, r in zip(outputs, requests, strict=True)
        ]
        self.stats.add(outputs, time.perf_counter() - bar.began)
        return outputs

    def _output(self, request: Request) -> GenerationOutput:
        return GenerationOutput(
            text=self.tokenizer.decode(request.tokens, skip_special_tokens=True),
            prompt_tokens=len(request.prompt_ids),
            completion_tokens=len(request.tokens),
            finish_reason="stop" if request.finished_by_stop else "length",
        )


def load_engine(config: EngineConfig | None = None):
    """The :class:`~hf_synth.engine.Engine` for ``config`` (the embedded default model when ``None``):
    a :class:`GenerationEngine`, or vLLM's engine when that is the backend (see
    :func:`~hf_synth.engine.selection.choose_backend`)."""
    return GenerationEngine.from_config(config)
