"""Run folders for the review tests, written the way the pipelines write them (no model needed)."""

from __future__ import annotations

import json
from pathlib import Path

from datasets import Dataset

from hf_synth.io import save_run
from hf_synth.rows import user_content

#: Text a browser would run if the page put it into HTML.
HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> {{ 7*7 }} {% raw %}'
SKILLS = ["coding", "creative_writing", "math_reasoning"]


def _messages(instruction: str, input_text: str, output: str) -> list[dict[str, str]]:
    return [
        {"role": "user", "content": user_content(instruction, input_text)},
        {"role": "assistant", "content": output},
    ]


def self_instruct_run(folder: Path, n: int = 6) -> Path:
    """A Self-Instruct-style run: ``n`` kept rows (with a skill column; row 1 holds hostile text, row 2
    non-English text) and three rejected rows."""
    rows = []
    for i in range(n):
        instruction = f"Write task number {i} about topic {i * 7}."
        input_text = "" if i % 2 else f"Input for task {i}"
        output = f"The answer to task {i}."
        if i == 1:
            instruction, output = f"Explain this markup: {HOSTILE}", f"It is markup. {HOSTILE}"
        if i == 2:
            instruction, output = (
                "Übersetze „Guten Morgen“ ins Japanische. 日本語で答えて。",
                "おはようございます",
            )
        rows.append(
            {
                "id": f"si-{i:03d}",
                "instruction": instruction,
                "input": input_text,
                "output": output,
                "messages": _messages(instruction, input_text, output),
                "source": "self-instruct",
                "round": 1 + i // 3,
                "skill": SKILLS[i % 3],
                "model": "scripted-teacher",
                "scores": {"words": 7, "rouge_l_max": 0.25, "rouge_l_nearest": "seed-1"},
            }
        )
    rejected = [
        {
            "id": f"si-rej-{i}",
            "instruction": f"Rejected task {i}",
            "input": "",
            "output": f"rejected output {i}" if i else "",
            "stage": "instance",
            "filter_reasons": [["rouge_l_too_similar"], ["refusal"], ["instance_truncated", "refusal"]][i],
        }
        for i in range(3)
    ]
    save_run(folder, Dataset.from_list(rows), summary={"generated": n + 3, "kept": n, "rejected": 3})
    with open(folder / "rejected.jsonl", "w", encoding="utf-8") as handle:
        for row in rejected:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return folder


def evol_instruct_run(folder: Path) -> Path:
    """An Evol-Instruct-style run: root r (not a row), r-r1 (deepening), r-r2 (its child, constraints),
    q-r1 (breadth); one eliminated row."""

    def row(id_, parent, parent_text, op, round_, instruction):
        return {
            "id": id_,
            "instruction": instruction,
            "input": "",
            "output": f"Answer to: {instruction}",
            "messages": _messages(instruction, "", f"Answer to: {instruction}"),
            "parent_id": parent,
            "root_id": id_.split("-")[0],
            "parent_instruction": parent_text,
            "evolution_op": op,
            "round": round_,
            "eliminated": False,
            "elimination_reasons": [],
            "skill": "open_qa",
        }

    rows = [
        row("r-r1", "r", "Name a fruit.", "deepening", 1, "Name a tropical fruit and say where it grows."),
        row(
            "r-r2",
            "r-r1",
            "Name a tropical fruit and say where it grows.",
            "constraints",
            2,
            "Name a tropical fruit, say where it grows, in under 20 words.",
        ),
        row("q-r1", "q", "What is rain?", "breadth", 1, "What makes hail different from snow?"),
    ]
    save_run(folder, Dataset.from_list(rows), summary={"evolved": 4, "kept": 3})
    eliminated = {**row("z-r1", "z", "Say hi.", "deepening", 1, "Say hi."), "eliminated": True}
    eliminated["elimination_reasons"] = ["no_new_information"]
    (folder / "rejected.jsonl").write_text(json.dumps(eliminated) + "\n", encoding="utf-8")
    return folder
