"""The generation engine: batched chat generation with any local transformers causal LM.

Everything in hf-synth that asks a model for text goes through :class:`GenerationEngine.generate`.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .continuous import ContinuousBatcher, Request, SamplingSpec, unsupported_reason
from .default_model import DEFAULT_MODEL_ID, default_model_path
from .engine_config import EngineConfig, SamplingParams

logger = logging.getLogger(__name__)

#: A prompt is either a user message or a list of chat messages (``{"role", "content"}``). When the last
#: message is the assistant's, the model continues it (prefill) instead of starting a new turn.
Prompt = str | Sequence[dict]


@dataclass
class GenerationOutput:
    """One generated completion.

    Attributes:
        text: The completion, without the prompt or special tokens (a prefill is not repeated).
        prompt_tokens: Tokens in the formatted prompt.
        completion_tokens: Generated tokens, counting the end-of-sequence token when the model stopped.
        finish_reason: ``"stop"`` if the model ended the text, ``"length"`` if ``max_new_tokens`` cut it.
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


@dataclass
class EngineStats:
    """Running totals over every call of one engine."""

    prompts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def add(self, outputs: Sequence[GenerationOutput], seconds: float) -> None:
        """Count one batch of outputs that took ``seconds``."""
        self.prompts += len(outputs)
        self.prompt_tokens += sum(o.prompt_tokens for o in outputs)
        self.completion_tokens += sum(o.completion_tokens for o in outputs)
        self.seconds += seconds

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        return {
            "prompts": self.prompts,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "seconds": round(self.seconds, 3),
            "tokens_per_second": round(self.tokens_per_second, 2),
        }


def _derive_seed(seed: int, texts: Sequence[str]) -> int:
    digest = hashlib.sha256(str(seed).encode())
    for text in texts:
        digest.update(b"\x00" + text.encode("utf-8", "surrogatepass"))
    return int.from_bytes(digest.digest()[:4], "little") & 0x7FFFFFFF


def _progress_disabled() -> bool:
    try:
        from huggingface_hub.utils import are_progress_bars_disabled

        return are_progress_bars_disabled()
    except ImportError:  # pragma: no cover - very old huggingface_hub
        return False


def _is_out_of_memory(err: Exception) -> bool:
    """CUDA/MPS/CPU allocation failures, whichever exception type the backend raises."""
    if isinstance(err, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(err, RuntimeError) and "out of memory" in str(err).lower()


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1


_WARNED_NO_TEMPLATE: set[str] = set()


def format_chat_prompt(tokenizer, prompt: Prompt, model_id: str = "unknown") -> str:
    """Render a prompt with ``tokenizer``'s chat template (messages joined as plain text without one).

    A final assistant message is continued (prefill) rather than closed.
    """
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    if not messages:
        raise ValueError("A prompt needs at least one message")
    prefill = messages[-1].get("role") == "assistant"
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=not prefill, continue_final_message=prefill
        )
    if model_id not in _WARNED_NO_TEMPLATE:
        logger.warning("%s has no chat template; joining messages as plain text", model_id)
        _WARNED_NO_TEMPLATE.add(model_id)
    text = "\n\n".join(str(m["content"]) for m in messages)
    return text if prefill else text + "\n\n"


@dataclass
class GenerationEngine:
    """Batched generation over a transformers causal LM and its tokenizer.

    Build it with :meth:`from_config` (loads by path, Hub id or the embedded default) or directly from a
    model and tokenizer you already hold (tests build tiny random models this way).
    """

    model: Any
    tokenizer: Any
    model_id: str = "unknown"
    batch_size: int = 64
    backend: str = "auto"
    stats: EngineStats = field(default_factory=EngineStats)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
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
        self._batcher = None
        if self.backend not in ("auto", "continuous", "transformers"):
            raise ValueError(
                f"GenerationEngine runs backend 'auto', 'continuous' or 'transformers', not {self.backend!r}; "
                "load vLLM with GenerationEngine.from_config(EngineConfig(backend='vllm'))"
            )
        if self.backend != "transformers":
            reason = unsupported_reason(self.model)
            if reason is None:
                self._batcher = ContinuousBatcher(self.model, self.batch_size, self._eos_ids())
            elif self.backend == "continuous":
                raise ValueError(
                    f"backend='continuous' cannot run {self.model_id}: {reason}; use 'transformers'"
                )
            else:
                logger.info(
                    "Continuous batching is off for %s (%s); using model.generate", self.model_id, reason
                )

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_config(cls, config: EngineConfig | None = None):
        """Load the model named in ``config`` (or the embedded default) on the device accelerate picks.

        Returns a :class:`GenerationEngine`, or a :class:`~hf_synth.engine.vllm_engine.VLLMEngine` (same
        ``generate`` interface) for ``backend="vllm"``.
        """
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from .distributed import process_state

        config = config or EngineConfig()
        if config.backend == "vllm":
            from .vllm_engine import VLLMEngine

            return VLLMEngine.from_config(config)
        if config.model is None:
            source: str | Path = default_model_path()
            model_id = DEFAULT_MODEL_ID
        else:
            source = config.model
            model_id = config.model
            local = Path(config.model).expanduser()
            if local.exists():
                source = local
            elif _looks_like_path(config.model):
                raise FileNotFoundError(
                    f"Model folder {config.model!r} does not exist; pass an existing folder or a Hub id "
                    "such as HuggingFaceTB/SmolLM2-360M-Instruct."
                )
        device = torch.device(config.device) if config.device else process_state().device
        if config.dtype == "auto":
            dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        else:
            dtype = getattr(torch, config.dtype)
        started = time.perf_counter()
        kwargs = {"revision": config.revision, "trust_remote_code": config.trust_remote_code}
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kwargs).to(device)
        logger.info("Loaded %s on %s in %.1fs", model_id, device, time.perf_counter() - started)
        return cls(
            model=model,
            tokenizer=tokenizer,
            model_id=model_id,
            batch_size=config.batch_size,
            backend=config.backend,
        )

    # ------------------------------------------------------------------ prompts
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def format_prompt(self, prompt: Prompt) -> str:
        """Render a prompt into the text the model sees (chat template, or plain text without one)."""
        return format_chat_prompt(self.tokenizer, prompt, self.model_id)

    # ------------------------------------------------------------------ generation
    def generate(
        self,
        prompts: Sequence[Prompt],
        sampling: SamplingParams | None = None,
        *,
        desc: str = "Generating",
        progress: bool = True,
    ) -> list[GenerationOutput]:
        """Generate one completion per prompt, in the order of ``prompts``.

        Prompts are sorted by token length (longest first) and generated ``batch_size`` at a time with left
        padding, so that each batch wastes little padding and a batch that does not fit in memory shows
        up first. Each batch's random seed derives from ``sampling.seed`` and its prompts.

        If a batch runs out of memory, the batch size is halved (for this and later calls; logged) and
        generation goes on; only a single prompt that does not fit raises.
        """
        sampling = sampling or SamplingParams()
        if not prompts:
            return []
        texts = [self.format_prompt(p) for p in prompts]
        has_template = bool(getattr(self.tokenizer, "chat_template", None))
        encoded = self.tokenizer(texts, add_special_tokens=not has_template)["input_ids"]
        if self._batcher is not None:
            return self._generate_continuous(texts, encoded, sampling, desc=desc, progress=progress)
        order = sorted(range(len(texts)), key=lambda i: -len(encoded[i]))
        results: list[GenerationOutput | None] = [None] * len(texts)
        eos_ids = self._eos_ids()

        from tqdm.auto import tqdm

        bar = tqdm(total=len(texts), desc=desc, unit="prompt", disable=not progress or _progress_disabled())
        try:
            start = 0
            while start < len(order):
                idx = order[start : start + self.batch_size]
                began = time.perf_counter()
                try:
                    batch_out = self._generate_batch(
                        [encoded[i] for i in idx], sampling, eos_ids, seed_texts=[texts[i] for i in idx]
                    )
                except Exception as err:
                    if not _is_out_of_memory(err) or len(idx) == 1:
                        raise
                    self.batch_size = max(1, len(idx) // 2)
                    logger.warning(
                        "Out of memory generating %d prompts at once; continuing with batch size %d",
                        len(idx),
                        self.batch_size,
                    )
                    if torch.cuda.is_available():
                        torch.cuda.empty_cache()
                    continue
                elapsed = time.perf_counter() - began
                for i, out in zip(idx, batch_out, strict=True):
                    results[i] = out
                self.stats.add(batch_out, elapsed)
                bar.update(len(idx))
                bar.set_postfix(tok_s=f"{self.stats.tokens_per_second:.1f}")
                start += len(idx)
        finally:
            bar.close()
        return results  # type: ignore[return-value]

    def _generate_continuous(
        self,
        texts: list[str],
        encoded: list[list[int]],
        sampling: SamplingParams,
        *,
        desc: str,
        progress: bool,
    ) -> list[GenerationOutput]:
        """Continuous batching: every prompt samples from its own stream, seeded by the base seed and its text."""
        from tqdm.auto import tqdm

        spec = SamplingSpec(
            max_new_tokens=sampling.max_new_tokens,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k,
            repetition_penalty=sampling.repetition_penalty,
        )
        requests = [
            Request(ids, seed=_derive_seed(sampling.seed, [text]))
            for ids, text in zip(encoded, texts, strict=True)
        ]
        self._batcher.slots = self.batch_size
        bar = tqdm(total=len(texts), desc=desc, unit="prompt", disable=not progress or _progress_disabled())
        began = time.perf_counter()
        finished_tokens = 0

        def on_finish(request: Request) -> None:
            nonlocal finished_tokens
            finished_tokens += len(request.tokens)
            bar.update(1)
            elapsed = time.perf_counter() - began
            bar.set_postfix(tok_s=f"{finished_tokens / elapsed:.1f}" if elapsed else "-")

        try:
            self._batcher.run(requests, spec, on_finish=on_finish)
        finally:
            bar.close()
        outputs = []
        for request in requests:
            outputs.append(
                GenerationOutput(
                    text=self.tokenizer.decode(request.tokens, skip_special_tokens=True),
                    prompt_tokens=len(request.prompt_ids),
                    completion_tokens=len(request.tokens),
                    finish_reason="stop" if request.finished_by_stop else "length",
                )
            )
        self.stats.add(outputs, time.perf_counter() - began)
        return outputs

    def _eos_ids(self) -> list[int]:
        eos = getattr(self.model.generation_config, "eos_token_id", None)
        if eos is None:
            eos = self.tokenizer.eos_token_id
        ids = [eos] if isinstance(eos, int) else list(eos or [])
        if not ids:
            raise ValueError(f"{self.model_id} defines no eos token; generation could never stop early")
        return ids

    @torch.inference_mode()
    def _generate_batch(
        self, input_ids: list[list[int]], sampling: SamplingParams, eos_ids: list[int], seed_texts: list[str]
    ) -> list[GenerationOutput]:
        batch = self.tokenizer.pad({"input_ids": input_ids}, padding=True, return_tensors="pt")
        batch = {k: v.to(self.device) for k, v in batch.items()}
        kwargs: dict[str, Any] = {
            "max_new_tokens": sampling.max_new_tokens,
            "do_sample": sampling.do_sample,
            "pad_token_id": self.tokenizer.pad_token_id,
            "eos_token_id": eos_ids,
            "repetition_penalty": sampling.repetition_penalty,
        }
        if sampling.do_sample:
            kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        torch.manual_seed(_derive_seed(sampling.seed, seed_texts))
        out = self.model.generate(**batch, **kwargs)
        generated = out[:, batch["input_ids"].shape[1] :].tolist()
        eos_set = set(eos_ids)
        outputs = []
        for prompt_ids, tokens in zip(input_ids, generated, strict=True):
            stop = next((j for j, t in enumerate(tokens) if t in eos_set), None)
            kept = tokens if stop is None else tokens[: stop + 1]
            outputs.append(
                GenerationOutput(
                    text=self.tokenizer.decode(kept, skip_special_tokens=True),
                    prompt_tokens=len(prompt_ids),
                    completion_tokens=len(kept),
                    finish_reason="length" if stop is None else "stop",
                )
            )
        return outputs
