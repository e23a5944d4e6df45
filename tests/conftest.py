"""Shared fixtures: offline Hub, a tiny random causal LM built in-process, and a scripted engine."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
# A datasets cache of this session only: pytest reuses temporary folder names across sessions, and a
# cache keyed by those paths would hand a test another session's rows.
os.environ.setdefault("HF_DATASETS_CACHE", tempfile.mkdtemp(prefix="hf_synth_tests_datasets_"))
os.environ["HF_DATASETS_OFFLINE"] = "1"


def _session_cache() -> str:
    """An hf-synth cache folder of this test session only (``$HF_SYNTH_CACHE``, inherited by every CLI the
    tests start): cpu_tuning.json and the compiled kernels are measured and built here, so a stale file in
    the user's ~/.cache/hf_synth never decides which projection path a test exercises. The converted
    default model is the one exception: a complete conversion in the user's cache is linked in (read only,
    nothing writes into a complete folder); without one, the first test that needs it converts it here."""
    user = Path(os.environ.get("HF_SYNTH_CACHE") or Path.home() / ".cache" / "hf_synth")
    session = Path(tempfile.mkdtemp(prefix="hf_synth_tests_cache_"))
    models = user / "models"
    if models.is_dir():
        (session / "models").mkdir()
        for folder in models.iterdir():
            if not folder.name.startswith(".") and (folder / "model.safetensors").is_file():
                (session / "models" / folder.name).symlink_to(folder.resolve(), target_is_directory=True)
    return str(session)


os.environ["HF_SYNTH_CACHE"] = SESSION_CACHE = _session_cache()
os.environ["HF_EVALUATE_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import json  # noqa: E402
import re  # noqa: E402
from collections.abc import Callable  # noqa: E402

import pytest  # noqa: E402

from hf_synth.engine import EngineStats, GenerationOutput  # noqa: E402

#: Seed tasks written for these tests, in the Self-Instruct seed format (id, name, instruction,
#: instances, is_classification). Checks on third-party real data live in bench/check_real_data.py.
SEED_TASKS = Path(__file__).resolve().parent / "data" / "seed_tasks.jsonl"

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
    "{% if not (loop.last and m['role'] == 'assistant') %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_tokenizer(chat_template: str | None = CHAT_TEMPLATE, pad: bool = True):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [
        "Write a poem about the sea. Classify the sentiment of the review. Input: Output: Class label:",
        "1. 2. 3. 4. 5. 6. 7. 8. 9. 10. Give three tips for staying healthy. Yes No",
        "The quick brown fox jumps over the lazy dog. Translate the sentence into French.",
    ] * 5
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = ["<unk>", "<|im_start|>", "<|im_end|>"] + (["<pad>"] if pad else [])
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(corpus, trainer)
    kwargs = {"eos_token": "<|im_end|>", "unk_token": "<unk>"}
    if pad:
        kwargs["pad_token"] = "<pad>"
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, **kwargs)
    if chat_template:
        fast.chat_template = chat_template
    return fast


def build_tiny_model(tokenizer, seed: int = 0):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=4096,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model.eval()


def skips_are_failures() -> bool:
    """In CI (``CI=true``, as CI services set it) or under ``HF_SYNTH_TESTS_NO_SKIP=1`` (``make test-vllm``),
    a test that cannot run for a missing dependency fails: a green run then means it really ran."""
    return any(
        os.environ.get(name, "").strip().lower() in ("1", "true", "yes")
        for name in ("CI", "HF_SYNTH_TESTS_NO_SKIP")
    )


def unavailable(reason: str):
    """Skip the test for ``reason`` (a missing browser, vllm), or fail it where skips are failures."""
    if skips_are_failures():
        pytest.fail(f"{reason} (CI=true / HF_SYNTH_TESTS_NO_SKIP=1: a test that cannot run is a failure)")
    pytest.skip(reason)


def committed_pages(tensor) -> int:
    """Pages of ``tensor``'s memory committed to this process alone (present and exclusively mapped in
    /proc/self/pagemap; untouched pages that were only read map the shared zero page). A count of this
    tensor's pages, unlike the process's RSS, which every other allocation moves."""
    import mmap
    import struct

    start, size = tensor.data_ptr(), tensor.numel() * tensor.element_size()
    first, last = start // mmap.PAGESIZE, (start + size - 1) // mmap.PAGESIZE
    with open("/proc/self/pagemap", "rb") as pagemap:
        pagemap.seek(first * 8)
        entries = pagemap.read((last - first + 1) * 8)
    return sum(entry >> 63 & entry >> 56 & 1 for (entry,) in struct.iter_unpack("<Q", entries))


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return build_tiny_tokenizer()


@pytest.fixture(scope="session")
def tiny_model(tiny_tokenizer):
    return build_tiny_model(tiny_tokenizer)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_model, tiny_tokenizer) -> Path:
    """The tiny model saved as a local folder, for code paths that load by path (the CLI)."""
    folder = tmp_path_factory.mktemp("tiny-model")
    tiny_model.save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder


def _prompt_text(prompt) -> str:
    if isinstance(prompt, str):
        return prompt
    return "\n".join(m["content"] for m in prompt)


class ScriptedEngine:
    """An :class:`~hf_synth.engine.Engine` whose ``reply(prompt_text) -> str`` decides each completion.

    Records every prompt it saw; ``fail_after`` raises after that many generate() calls (a crash).
    """

    backend = "scripted"

    def describe(self):
        return {"model": self.model_id, "backend": self.backend, "dtype": "none", "device": "none"}

    def format_prompt(self, prompt) -> str:
        return _prompt_text(prompt)

    def __init__(
        self, reply: Callable[[str], str], model_id: str = "scripted-teacher", fail_after: int | None = None
    ):
        self.reply = reply
        self.model_id = model_id
        self.stats = EngineStats()
        self.calls: list[list[str]] = []
        self.fail_after = fail_after

    def generate(self, prompts, sampling=None, *, desc="Generating", progress=True, on_output=None):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise RuntimeError("simulated crash")
        texts = [_prompt_text(p) for p in prompts]
        self.calls.append(texts)
        outputs = []
        for text in texts:
            reply = self.reply(text)
            tokens = max(1, len(reply.split()))
            outputs.append(
                GenerationOutput(
                    text=reply,
                    prompt_tokens=len(text.split()),
                    completion_tokens=tokens,
                    finish_reason="stop",
                )
            )
        self.stats.prompts += len(texts)
        self.stats.completion_tokens += sum(o.completion_tokens for o in outputs)
        self.stats.seconds += 0.001 * len(texts)
        if on_output is not None:
            for index, output in enumerate(outputs):
                on_output(index, output)
        return outputs


def which_template(text: str) -> str:
    if "Continue it with" in text:
        return "instructions"
    if "Is the task below a classification task?" in text:
        return "classify"
    if "First pick one of its possible class labels" in text:
        return "output_first"
    if "First write the input the task works on" in text:
        return "input_first"
    raise AssertionError(f"unknown prompt: {text[:200]}")


def task_of(text: str) -> str:
    return re.findall(r"^Task: (.*)$", text, re.MULTILINE)[-1]


@pytest.fixture
def scripted_engine_factory():
    return ScriptedEngine


def seed_task_rows() -> list[dict]:
    return [json.loads(line) for line in SEED_TASKS.read_text(encoding="utf-8").splitlines()]


_FORMS = ["poem", "short story", "news report", "product review", "letter", "speech", "recipe", "riddle"]
_TOPICS = [
    "the sea",
    "a lost key",
    "city traffic",
    "a first job",
    "winter mornings",
    "a broken phone",
    "the moon landing",
    "a village market",
    "learning to swim",
    "an old bridge",
    "space travel",
    "a rainy holiday",
]
_ASKS = [
    "Write a {form} about {topic}.",
    "Compose a {form} that mentions {topic} twice.",
    "Draft a funny {form} about {topic} for children.",
]


def many_instructions(n: int) -> list[str]:
    """``n`` distinct instructions: the fixture tasks, hf-synth's example seeds, then instructions built
    from templates (near-duplicates at many ROUGE-L levels, as a generated pool has)."""
    from hf_synth.io import EXAMPLE_SEEDS

    texts = [row["instruction"] for row in seed_task_rows()]
    texts += [json.loads(line)["instruction"] for line in Path(EXAMPLE_SEEDS).read_text().splitlines()]
    for ask in _ASKS:
        for topic in _TOPICS:
            for form in _FORMS:
                texts.append(ask.format(form=form, topic=topic))
    unique = list(dict.fromkeys(texts))
    assert len(unique) >= n, f"only {len(unique)} instructions available"
    return unique[:n]


@pytest.fixture(scope="session")
def real_seed_rows() -> list[dict]:
    """The fixture seed tasks (hand-written, in the format of the Self-Instruct seed file)."""
    return seed_task_rows()
