"""Template slots: "Explain [X] in the context of [Y] for [Z]" filled with values the LLM proposes (or the
user gives), combined without repeats, rendered and answered."""

from __future__ import annotations

import itertools
import json
import random
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from datasets import Dataset

from ..checkpoint import Checkpointer
from ..engine import Engine, SamplingParams
from ..prompts import render_messages
from ..rows import add_messages, checkpointed_map, journaled
from ..self_instruct.parsing import parse_instruction_list

TEMPLATE_SLOT_VALUES = "augment/slot_values"
_SLOT = re.compile(r"\[([A-Za-z][A-Za-z0-9_ ]{0,40})\]")


def template_slots(template: str) -> list[str]:
    """Slot names in order of first appearance ("[X] and [Y] and [X]" -> ["X", "Y"])."""
    return list(dict.fromkeys(_SLOT.findall(template)))


def propose_slot_values(
    template: str, engine: Engine, *, count: int = 8, sampling: SamplingParams | None = None
) -> dict[str, list[str]]:
    """Ask the model for ``count`` varied values per slot (a numbered list each). Duplicates, values longer
    than 80 characters, values with brackets and values copied from the prompt (its example) are dropped;
    a slot can come back empty, and then needs values from the user."""
    sampling = sampling or SamplingParams(max_new_tokens=160, temperature=0.9, top_p=0.95)
    slots = template_slots(template)
    prompts = [render_messages(TEMPLATE_SLOT_VALUES, template=template, slot=s, count=count) for s in slots]
    outputs = engine.generate(prompts, sampling, desc="Slot values")
    values = {}
    for slot, prompt, out in zip(slots, prompts, outputs, strict=True):
        parsed = parse_instruction_list(
            f"1. {out.text}", truncated=out.finish_reason == "length", max_items=count
        )
        prompt_text = " ".join(m["content"] for m in prompt).lower()
        values[slot] = list(
            dict.fromkeys(
                v.rstrip(".")
                for v in parsed.items
                # a value is a few words, and not something copied from the prompt (its example, a slot)
                if len(v) <= 80 and "[" not in v and "]" not in v and v.rstrip(".").lower() not in prompt_text
            )
        )
    return values


def fill_template(
    template: str,
    values: Mapping[str, Sequence[str]],
    engine: Engine,
    *,
    num: int = 20,
    seed: int = 0,
    template_id: str = "template-0",
    answer_sampling: SamplingParams | None = None,
    checkpointer: Checkpointer | None = None,
    name: str = "slots",
) -> Dataset:
    """Sample up to ``num`` distinct slot combinations (without repeats, deterministic in ``seed``), render
    the instructions and answer them. Columns: ``id``, ``instruction``, ``input``, ``output``, ``messages``,
    ``template_id``, ``template``, ``slot_values`` (JSON), ``strategy``, ``source``, ``model``."""
    engine = journaled(engine, checkpointer)
    slots = template_slots(template)
    if not slots:
        raise ValueError(
            f"The template has no [SLOT]: {template!r}; write slots in square brackets, e.g. [topic]."
        )
    missing = [s for s in slots if not values.get(s)]
    if missing:
        raise ValueError(
            f"No values for slot(s) {', '.join(missing)}; give them or let the model propose them."
        )
    space = 1
    for s in slots:
        space *= len(values[s])
    rng = random.Random(seed)
    if space <= 100_000:
        combos = rng.sample(list(itertools.product(*(values[s] for s in slots))), min(num, space))
    else:  # too many to list: draw until enough distinct ones
        seen: set[tuple[str, ...]] = set()
        while len(seen) < num:
            seen.add(tuple(rng.choice(list(values[s])) for s in slots))
        combos = sorted(seen, key=lambda c: rng.random())
    rows = []
    for i, combo in enumerate(combos):
        instruction = template
        for slot, value in zip(slots, combo, strict=True):
            instruction = instruction.replace(f"[{slot}]", value)
        rows.append(
            {
                "id": f"{template_id}-{i:04d}",
                "instruction": instruction,
                "input": "",
                "template_id": template_id,
                "template": template,
                "slot_values": json.dumps(dict(zip(slots, combo, strict=True)), ensure_ascii=False),
            }
        )
    sampling = answer_sampling or SamplingParams(max_new_tokens=256, temperature=0.7, top_p=0.9)

    def _answer(batch: dict[str, list]) -> dict[str, list]:
        outputs = engine.generate(batch["instruction"], sampling, desc="Answering")
        return {"output": [o.text.strip() for o in outputs]}

    answered = checkpointed_map(
        Dataset.from_list(rows), _answer, checkpointer, name, batch_size=64, desc="Answering filled templates"
    )
    answered = answered.map(
        lambda _: {"strategy": "template_slots", "source": "template_slots", "model": engine.model_id},
        keep_in_memory=True,
    )
    return add_messages(answered)


def fill_slots(
    template: str,
    values: Mapping[str, Sequence[str]] | None,
    engine,
    *,
    count: int = 8,
    num: int = 20,
    seed: int = 0,
    answer_sampling: SamplingParams | None = None,
    checkpoint_dir: str | Path | None = None,
    overwrite: bool = False,
):
    """``hf-synth slots`` as a step: the model proposes ``count`` values for every slot ``values`` does not
    fill (:func:`propose_slot_values`), then :func:`fill_template` makes ``num`` instructions and answers
    them. Proposals and answers are journaled under ``checkpoint_dir`` (tied to the template, values and
    settings; ``overwrite`` discards another run's), so a re-run gets the same values back. ``engine`` may
    be an :class:`~hf_synth.engine.EngineConfig`. Returns a :class:`~hf_synth.results.StepResult` that
    unpacks as ``(rows, slot values)``."""
    from .step_results import bind_step, slots_result

    slots = template_slots(template)
    given = {k: list(v) for k, v in (values or {}).items()}
    unknown = sorted(set(given) - set(slots))
    if unknown or not slots:
        raise ValueError(
            f"Template slots are {', '.join(slots) or 'none'}; --values named {', '.join(unknown)}"
        )
    given_engine = engine
    checkpointer, (engine,) = bind_step(
        None,
        checkpoint_dir,
        [engine],
        lambda ids: {
            "template": template,
            "values": given,
            "count": count,
            "num": num,
            "seed": seed,
            "max_new_tokens": answer_sampling.max_new_tokens if answer_sampling is not None else None,
            "model": ids[0],
        },
        overwrite=overwrite,
    )
    try:
        if set(slots) - set(given):  # proposals are journaled too: a re-run gets the same values back
            proposed = propose_slot_values(template, journaled(engine, checkpointer), count=count)
            given = {**proposed, **given}
        rows = fill_template(
            template,
            given,
            engine,
            num=num,
            seed=seed,
            answer_sampling=answer_sampling,
            checkpointer=checkpointer,
        )
    finally:
        if checkpointer is not None:
            checkpointer.close()
    return slots_result(
        rows,
        template=template,
        values=given,
        engine=engine,
        num=num,
        count=count,
        seed=seed,
        engine_for_config=given_engine,
    )
