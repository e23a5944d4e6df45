"""The generation engine: chat prompts in, completions out, over any local transformers causal LM.

Everything in hf-synth that asks a model for text goes through an :class:`~hf_synth.engine.Engine`;
:class:`GenerationEngine` is the one that holds a transformers model and tokenizer and hands the token
work to the backend chosen by name (:mod:`hf_synth.engine.selection`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .default_model import DEFAULT_MODEL_ID, default_model_path
from .engine_config import EngineConfig, SamplingParams
from .model_source import check_model_source
from .protocol import EngineStats, GenerationOutput, GenerationProgress, Prompt, format_chat_prompt
from .runner import Request, derive_seed
from .selection import BackendChoice, choose_backend, default_batch_size, make_runner, vllm_installed

logger = logging.getLogger(__name__)

#: Set to ``1`` to run the continuous batcher's self-check off CUDA too.
SELF_CHECK_ENV = "HF_SYNTH_SELF_CHECK"

__all__ = [
    "EngineStats",
    "GenerationEngine",
    "GenerationOutput",
    "Prompt",
    "format_chat_prompt",
    "load_engine",
]


def model_id_of(config: EngineConfig) -> str:
    """The model id an engine for ``config`` records (in rows, cards and checkpoint fingerprints), known
    before anything loads; a model that cannot load (a missing folder, a Hub id not cached while the Hub
    is offline) is a ``FileNotFoundError`` here."""
    if config.uses_server:
        return config.model or ""  # "": the server names it when asked (see ServerEngine.from_config)
    if config.model is None:
        return DEFAULT_MODEL_ID
    check_model_source(config.model, config.revision)
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

    ``self_check``: before ``continuous`` is trusted, run :func:`~hf_synth.engine.self_check.check_continuous`
    (a few prompts, a few greedy tokens against ``model.generate``); ``None``: on CUDA, and wherever
    ``HF_SYNTH_SELF_CHECK=1`` is set (how the GPU check's dry run checks on the CPU). When the backend
    was ``auto`` and the check fails, the engine falls back to ``transformers-paged`` (or ``transformers``
    where this transformers lacks ``generate_batch``) with one logged warning; a ``continuous`` asked for
    by name runs anyway, with the check's result logged. ``backend_reason`` says afterwards why the
    backend that runs was chosen (recorded by :meth:`describe`). ``choice``: the backend
    :func:`~hf_synth.engine.selection.choose_backend` already resolved for this model (``from_config``
    decides it before the weights load, so it is decided once per load); ``None`` resolves ``backend``.
    """

    model: Any
    tokenizer: Any
    model_id: str = "unknown"
    batch_size: int | None = None
    backend: str = "auto"
    stats: EngineStats = field(default_factory=EngineStats)
    self_check: bool | None = None
    backend_reason: str = ""
    #: The backend already resolved for this model (by :meth:`from_config`, which decides it before the
    #: weights load); ``None``: resolved here from ``backend``.
    choice: InitVar[BackendChoice | None] = None

    def __post_init__(self, choice: BackendChoice | None) -> None:
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
        requested = self.backend
        if choice is None:
            choice = choose_backend(requested, self.device.type, getattr(self.model, "config", None))
        if self.backend_reason:  # e.g. why vLLM did not start (from from_config)
            choice = BackendChoice(choice.name, f"{self.backend_reason}; {choice.reason}")
        self._default_batch = self.batch_size is None
        checked = choice.name == "continuous" and (
            self.device.type == "cuda" or os.environ.get(SELF_CHECK_ENV) == "1"
            if self.self_check is None
            else self.self_check
        )
        self.backend_reason = choice.reason
        try:
            self._use(choice.name)
        except Exception as err:
            if not (checked and requested == "auto"):
                raise
            self._fall_back(f"the continuous batcher failed to start ({type(err).__name__}: {err})")
        else:
            if checked:
                self._check_fast_path(requested, choice.reason)
        logger.info(
            "Engine: %s with backend %s (%s), %s on %s, batch size %d",
            self.model_id,
            self.backend,
            self.backend_reason,
            self.dtype,
            self.device,
            self.batch_size,
        )

    def _use(self, backend: str) -> None:
        """Make ``backend``'s runner (the batch size follows the backend unless it was given)."""
        self.backend = backend
        if self._default_batch:
            self.batch_size = default_batch_size(backend, self.device.type)
        self.runner = make_runner(
            backend,
            self.model,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_ids=self._eos_ids(),
            batch_size=self.batch_size,
        )

    def _check_fast_path(self, requested: str, reason: str) -> None:
        """Run the continuous batcher's self-check; on failure under ``auto``, fall back."""
        from .self_check import CHECK_PROMPTS, check_continuous

        result = check_continuous(self.runner, self.model, self._encode(list(CHECK_PROMPTS)), self._eos_ids())
        if result.ok or requested != "auto":
            log = logger.info if result.ok else logger.warning
            log("Backend continuous (%s): %s%s", reason, result, "" if result.ok else "; running it as asked")
            self.backend_reason = f"{reason}; {result}"
            return
        self._fall_back(f"the continuous batcher's {result}")

    def _fall_back(self, why: str) -> None:
        """Leave ``continuous`` for transformers' own batching; one warning says why."""
        from .paged import paged_generation_available

        self.runner = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()  # the batcher's KV cache and graphs
        backend = "transformers-paged" if paged_generation_available(self.model) else "transformers"
        logger.warning("Backend %s instead of continuous: %s", backend, why)
        self._use(backend)
        self.backend_reason = f"{self.backend_reason}; fell back from continuous: {why}"

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
        vllm_problem = ""
        if choice.name == "vllm":
            logger.info("Backend vllm (%s)", choice.reason)
            try:
                from .vllm_engine import VLLMEngine

                return VLLMEngine.from_config(config)
            except Exception as err:  # an import or start-up failure: auto falls back like the self-check
                if config.backend != "auto":
                    raise
                vllm_problem = f"vLLM failed to start ({type(err).__name__}: {err})"
                choice = choose_backend("auto", device.type, model_config)
                logger.warning("Backend %s instead of vllm: %s", choice.name, vllm_problem)
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
            backend=config.backend,  # what was asked for: under "auto" a failed self-check falls back
            backend_reason=vllm_problem,
            choice=choice,
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
            "backend_reason": self.backend_reason,
        }

    @property
    def max_concurrency(self) -> int:
        """Sequences decoded at once: the batch size (the KV-cache slots of ``continuous``)."""
        return int(self.batch_size)

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
        encoded = self._encode(texts, formatted=True)
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

    def _encode(self, prompts: Sequence, formatted: bool = False) -> list[list[int]]:
        """Token ids of ``prompts`` (rendered with :meth:`format_prompt` unless ``formatted``)."""
        texts = list(prompts) if formatted else [self.format_prompt(p) for p in prompts]
        has_template = bool(getattr(self.tokenizer, "chat_template", None))
        return self.tokenizer(texts, add_special_tokens=not has_template)["input_ids"]

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
    :func:`~hf_synth.engine.selection.choose_backend`). The engine keeps ``config`` as ``engine_config``
    (the ``engine:`` section a saved run's config.yaml records)."""
    config = config or EngineConfig()
    engine = GenerationEngine.from_config(config)
    engine.engine_config = config
    return engine
