"""A teacher that answers at once: an in-process :class:`~hf_synth.engine.Engine` whose replies are plausible
for every prompt hf-synth sends (Self-Instruct lists, task types, instances; Evol-Instruct rewrites, judge
questions, answers), so every second a run takes is hf-synth's own.

Replies are built from a word list with an RNG seeded by the prompt's text, so they vary (ROUGE-L novelty
keeps most instructions, as it does with a real teacher) and the same prompt always gets the same reply
(a resumed run regenerates exactly what a killed one lost). ``reply_for(text)`` is the rule; the fake
chat server of the server benchmark serves the same rule.
"""

from __future__ import annotations

import hashlib
import random
import re
import threading
from collections.abc import Sequence

from hf_synth.engine.engine_config import SamplingParams
from hf_synth.engine.protocol import EngineStats, GenerationOutput

_SYLLABLES = [
    "ba", "ce", "di", "fo", "gu", "ha", "je", "ki", "lo", "mu", "na", "pe", "ri", "so", "tu", "va", "we",
    "xi", "yo", "za", "bre", "cla", "dro", "fle", "gri", "plo", "sta", "tre", "vin", "mor", "sel", "tan",
]  # fmt: skip
_VERBS = [
    "Explain", "Describe", "Summarize", "List", "Compare", "Suggest", "Outline", "Write", "Plan", "Rewrite",
    "Estimate", "Recommend", "Propose", "Draft", "Identify", "Name", "Give", "Create", "Translate", "Define",
]  # fmt: skip
_COMMON = ["the", "a", "of", "for", "and", "to", "in", "with", "about", "how", "your", "that", "on"]


def _vocabulary(size: int = 6000) -> list[str]:
    rng = random.Random(0)
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


WORDS = _vocabulary()


def _rng(text: str) -> random.Random:
    return random.Random(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest())


def _phrase(rng: random.Random, n: int) -> str:
    # Zipf-like: a few common words, most drawn from a large vocabulary, as instructions are.
    out = []
    for _ in range(n):
        if rng.random() < 0.3:
            out.append(rng.choice(_COMMON))
        else:
            out.append(WORDS[min(len(WORDS) - 1, int(rng.paretovariate(0.6)) - 1 + rng.randrange(200))])
    return " ".join(out)


def instruction(rng: random.Random) -> str:
    return f"{rng.choice(_VERBS)} {_phrase(rng, rng.randint(7, 14))}."


def reply_for(text: str) -> str:
    """The reply to a prompt whose formatted text is ``text`` (the prefill, when any, is its end)."""
    rng = _rng(text)
    if "Continue it with" in text:
        n = int(re.search(r"Continue it with (\d+) new tasks", text).group(1))
        start = int(re.findall(r"(\d+)\.\s*$", text)[-1])
        items = [instruction(rng) for _ in range(n)]
        return " " + "\n".join(f"{start + k}. {item}" if k else item for k, item in enumerate(items))
    if "Is the task below a classification task?" in text:
        return " Yes" if rng.random() < 0.15 else " No"
    if "First pick one of its possible class labels" in text:
        return (
            f" {rng.choice(['Positive', 'Negative', 'Neutral'])}\nInput: {_phrase(rng, rng.randint(8, 20))}."
        )
    if "First write the input the task works on" in text:
        given = "<none>" if rng.random() < 0.6 else _phrase(rng, rng.randint(6, 18)) + "."
        return f" {given}\nOutput: {_phrase(rng, rng.randint(20, 60))}."
    if text.rstrip().endswith("Rewritten instruction:"):
        parent = text.split("Original instruction:")[-1].split("Rewritten instruction:")[0].strip()
        return f" {parent.rstrip('.')} {_phrase(rng, rng.randint(8, 14))}, and {_phrase(rng, 4)}."
    if text.rstrip().endswith("New instruction:"):
        return " " + instruction(rng)
    if text.rstrip().endswith("Answer:"):
        return f" {rng.randint(6, 9)}" if "one number" in text else " Yes"
    return _phrase(rng, rng.randint(30, 80)).capitalize() + "."


def prompt_text(prompt) -> str:
    return prompt if isinstance(prompt, str) else "\n".join(str(m["content"]) for m in prompt)


class InstantTeacher:
    """An :class:`~hf_synth.engine.Engine` that answers every prompt at once with :func:`reply_for`.

    ``max_concurrency`` is the width it reports (how many sequences a real engine would decode at once);
    ``concurrent_calls`` whether it says ``generate`` may run in several threads at once (as ``server``
    does); ``calls`` records ``(desc, number of prompts)`` of each ``generate`` call and ``events``
    ``("start" | "end", desc)`` in the order they happened.
    """

    backend = "instant"

    def __init__(
        self, model_id: str = "instant-teacher", max_concurrency: int = 256, concurrent_calls: bool = False
    ) -> None:
        self.model_id = model_id
        self.max_concurrency = max_concurrency
        self.concurrent_calls = concurrent_calls
        self.stats = EngineStats()
        self.calls: list[tuple[str, int]] = []
        self.events: list[tuple[str, str]] = []
        self.seconds = 0.0
        self.seconds_by_desc: dict[str, float] = {}
        self._lock = threading.Lock()

    def describe(self) -> dict:
        return {"model": self.model_id, "backend": self.backend, "dtype": "none", "device": "none"}

    def format_prompt(self, prompt) -> str:
        return prompt_text(prompt)

    def generate(
        self,
        prompts: Sequence,
        sampling: SamplingParams | None = None,
        *,
        desc: str = "Generating",
        progress: bool = True,
        on_output=None,
    ) -> list[GenerationOutput]:
        import time

        began = time.perf_counter()
        with self._lock:
            self.calls.append((desc, len(prompts)))
            self.events.append(("start", desc))
        outputs = []
        for prompt in prompts:
            text = prompt_text(prompt)
            reply = reply_for(text)
            outputs.append(
                GenerationOutput(
                    text=reply,
                    prompt_tokens=len(text) // 4,
                    completion_tokens=max(1, len(reply) // 4),
                    finish_reason="stop",
                )
            )
        if on_output is not None:
            for index, output in enumerate(outputs):
                on_output(index, output)
        seconds = time.perf_counter() - began
        with self._lock:
            self.events.append(("end", desc))
            self.seconds += seconds
            self.seconds_by_desc[desc] = self.seconds_by_desc.get(desc, 0.0) + seconds
        self.stats.add(outputs, seconds)
        return outputs
