"""The closed loop on tiny models: real Self-Instruct generation (scripted teacher), real TRL fine-tuning of a
tiny random student, scripted or real evaluation, targeting, early stopping, resume and the report."""

import json

import pytest
from datasets import Dataset, load_from_disk

from hf_synth import Refine, RefineConfig, SelfInstructConfig
from hf_synth.cli import main
from hf_synth.refine import choose_focus, score_answers

from .conftest import ScriptedEngine, task_of
from .test_self_instruct import SEEDS, stateless_reply

EVAL = [
    {"instruction": "Translate 'good evening' into German.", "output": "Guten Abend"},
    {"instruction": "Translate 'thank you' into Italian.", "output": "Grazie"},
    {
        "instruction": "Write a Python function that returns the maximum of a list.",
        "output": "def biggest(xs): return max(xs)",
    },
    {
        "instruction": "Implement a function that reverses a string in JavaScript.",
        "output": "const rev = s => s.split('').reverse().join('')",
    },
    {"instruction": "Solve for y: 4y - 2 = 10.", "output": "y equals 3"},
    {"instruction": "What is 30% of 50? Show the calculation.", "output": "0.3 times 50 is 15"},
]


class RoundStudent(ScriptedEngine):
    """A student whose answers depend on the round its weights come from: round 0 knows nothing, round 1
    answers translation and maths, round 2 forgets the maths."""

    def __init__(self, model_path: str):
        round_index = 0 if "round-" not in model_path else int(model_path.split("round-")[1].split("/")[0])

        def reply(text: str) -> str:
            for row in EVAL:
                if text.startswith(row["instruction"]):
                    knows = {0: (), 1: ("Translate", "Solve", "What is"), 2: ("Translate",)}[round_index]
                    return row["output"] if row["instruction"].startswith(knows) else "no idea"
            raise AssertionError(text)

        super().__init__(reply, model_id=model_path)


def _config(**kwargs):
    values = dict(
        rounds=3,
        instructions_per_round=4,
        max_steps=2,
        train_batch_size=2,
        eval_max_new_tokens=8,
        focus_k=2,
        patience=1,
        generation=SelfInstructConfig(requests_per_round=2, max_rounds=4),
    )
    values.update(kwargs)
    return RefineConfig(**values)


def test_score_answers_and_focus():
    rows = [{"output": "the cat sat"}, {"output": "a dog ran"}]
    scored = score_answers(["the cat sat", "nothing"], rows, ["coding", "translation"])
    assert scored["rouge_l"] == 0.5 and scored["per_skill"] == {"coding": 1.0, "translation": 0.0}
    focus = choose_focus({"a": 0.5, "b": 0.4, "c": 0.1}, {"a": 0.2, "b": 0.45, "c": 0.3}, 2, {"a", "b", "c"})
    assert [s for s, _ in focus] == ["a", "c"] and "fell from 0.500 to 0.200" in focus[0][1]
    assert [s for s, _ in choose_focus(None, {"a": 0.2, "b": 0.1}, 1, {"a", "b"})] == ["b"]


def test_the_loop_targets_stops_and_resumes(tmp_path, tiny_model_dir):
    teacher = ScriptedEngine(stateless_reply)
    out = tmp_path / "refine"
    config = _config(student_model=str(tiny_model_dir))
    refine = Refine(teacher, config, out, load_student=lambda c: RoundStudent(c.model))
    result = refine.run(Dataset.from_list(SEEDS), Dataset.from_list(EVAL))
    report = result.report
    scores = [r["eval"]["rouge_l"] for r in report["rounds"]]
    assert [r["round"] for r in report["rounds"]] == [0, 1, 2]  # round 2 made it worse: stopped, not round 3
    assert scores[1] > scores[0] and scores[2] < scores[1]
    assert report["stopped"].startswith("stopped after round 2") and report["best_round"] == 1
    assert report["best_student"].endswith("round-1/student")
    one, two = report["rounds"][1], report["rounds"][2]
    # round 0 knew nothing: the next focus is the lowest skills; after round 2, maths fell: it comes first
    assert len(report["rounds"][0]["eval"]["per_skill"]) == 3
    assert list(two["next_focus"])[0] == "math_reasoning" and "fell" in two["next_focus"]["math_reasoning"]
    assert one["generation"]["focus_skills"] == list(report["rounds"][0]["next_focus"])
    assert (
        one["generation"]["added"] > 0
        and two["accumulated_rows"] == one["accumulated_rows"] + two["generation"]["added"]
    )
    assert one["training"]["steps"] == 2 and (out / "round-1" / "student" / "config.json").is_file()
    assert sorted(set(result.dataset["refine_round"])) == [1, 2]
    page = (out / "refine_report.html").read_text()
    assert "<img" in page and "stopped after round 2" in page
    assert json.loads((out / "refine_report.json").read_text())["best_round"] == 1
    # a rerun finds every step done: the teacher is not asked again and no student is trained again
    done = out / "checkpoints" / "round-2" / "training.json"  # the training step's checkpoint entry
    stamp = (done.stat().st_mtime_ns, (out / "round-2" / "student" / "config.json").stat().st_mtime_ns)
    again_teacher = ScriptedEngine(stateless_reply)
    again = Refine(again_teacher, config, out, load_student=lambda c: RoundStudent(c.model)).run(
        Dataset.from_list(SEEDS), Dataset.from_list(EVAL)
    )
    assert again.report["rounds"] == report["rounds"] and again_teacher.calls == []
    assert (
        done.stat().st_mtime_ns,
        (out / "round-2" / "student" / "config.json").stat().st_mtime_ns,
    ) == stamp
    assert not list(out.rglob("*.tmp"))  # no temporary file or folder left behind
    # the focus of round k+1's generation is what round k's evaluation chose
    assert two["generation"]["focus_skills"] == list(one["next_focus"])


def test_evaluation_tasks_in_the_seeds_are_refused(tmp_path, tiny_model_dir):
    leaked = [{"instruction": SEEDS[0]["instruction"], "output": "x"}, *EVAL]
    refine = Refine(ScriptedEngine(stateless_reply), _config(student_model=str(tiny_model_dir)), tmp_path)
    with pytest.raises(ValueError, match="overlap the seeds"):
        refine.run(Dataset.from_list(SEEDS), Dataset.from_list(leaked))
    with pytest.raises(ValueError, match="no reference output"):
        refine.run(Dataset.from_list(SEEDS), Dataset.from_list([{"instruction": "Name a colour."}]))


def test_cli_refine_with_a_served_teacher_and_a_real_tiny_student(tmp_path, tiny_model_dir, capsys):
    """The command end to end: the scripted teacher behind a local chat-completions server (the server
    backend), the tiny random model as student (real TRL fine-tuning, real evaluation through the engine);
    the scores mean nothing, the plumbing is what is tested."""
    from .chat_server import FakeChatServer

    eval_file = tmp_path / "eval.jsonl"
    eval_file.write_text("".join(json.dumps(r) + "\n" for r in EVAL))
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps(r) + "\n" for r in SEEDS))
    with FakeChatServer(
        lambda messages, body: stateless_reply("\n".join(m["content"] for m in messages))
    ) as server:
        args = [
            "refine",
            "--seeds",
            str(seeds),
            "--eval",
            str(eval_file),
            "--output",
            str(tmp_path / "r"),
            "--base-url",
            server.url,
            "--student-model",
            str(tiny_model_dir),
            "--rounds",
            "1",
            "--instructions-per-round",
            "3",
            "--max-steps",
            "1",
            "--eval-max-new-tokens",
            "4",
            "--train-batch-size",
            "2",
        ]
        assert main(args) == 0, capsys.readouterr().err
        out = capsys.readouterr().out
        assert main([*args[:-2], "--train-batch-size", "4"]) == 2  # another configuration: refused
        assert "different configuration" in capsys.readouterr().err
    report = json.loads((tmp_path / "r" / "refine_report.json").read_text())
    assert [r["round"] for r in report["rounds"]] == [0, 1] and report["teacher"] == "fake-model"
    assert report["rounds"][1]["generation"]["added"] >= 3 and report["rounds"][1]["training"]["steps"] == 1
    assert "best round" in out and (tmp_path / "r" / "round-1" / "student" / "config.json").is_file()
    card = (tmp_path / "r" / "README.md").read_text()  # the card of the accumulated data
    assert "rows dropped per set: `evaluation` 0" in card and "Selection: every generated row" in card
    # the accumulated data's diversity, in the report, its page and the card
    diversity = report["diversity"]
    assert diversity["rows"] == report["rounds"][1]["accumulated_rows"]
    assert diversity["rouge_l_reference"] == f"nearest of {len(SEEDS)} seeds"
    assert "## Diversity" in card and f"| `distinct_1` | {diversity['distinct_1']} |" in card
    page = (tmp_path / "r" / "refine_report.html").read_text()
    assert "Diversity of the accumulated training data" in page


def test_a_refine_run_killed_in_the_middle_of_a_step_resumes_without_asking_twice(tmp_path, tiny_model_dir):
    """A teacher that dies half-way through the run (inside round 1's generation step, in the middle of
    its engine calls): rerun with the same folder, the loop ends where an uninterrupted run ends, and
    every prompt is asked of the teachers together exactly as often as the uninterrupted run asked it."""
    from collections import Counter

    config = _config(student_model=str(tiny_model_dir))

    def run(teacher, out):
        refine = Refine(teacher, config, out, load_student=lambda c: RoundStudent(c.model))
        return refine.run(Dataset.from_list(SEEDS), Dataset.from_list(EVAL))

    reference_teacher = ScriptedEngine(stateless_reply)
    reference = run(reference_teacher, tmp_path / "clean").report
    calls = len(reference_teacher.calls)
    assert calls >= 4
    # calls // 2 falls on a round boundary here; one call later is inside a step (without the step's
    # Self-Instruct checkpoints this test fails: prompts are asked twice)
    crashed = ScriptedEngine(stateless_reply, fail_after=calls // 2 + 1)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(crashed, tmp_path / "killed")
    assert not (tmp_path / "killed" / "refine_report.json").exists()  # it died before the end
    resumed = ScriptedEngine(stateless_reply)
    report = run(resumed, tmp_path / "killed").report
    assert resumed.calls and len(resumed.calls) < calls  # work before the crash was reused
    asked = Counter(p for call in crashed.calls + resumed.calls for p in call)
    assert asked == Counter(p for call in reference_teacher.calls for p in call)  # nothing asked twice

    def outcome(value, out):  # the results: no timings or this process's token counts, paths relative
        if isinstance(value, dict):
            return {
                k: outcome(v, out) for k, v in value.items() if k not in ("tokens", "seconds", "training")
            }
        if isinstance(value, list):
            return [outcome(v, out) for v in value]
        return value.replace(str(out), "OUT") if isinstance(value, str) else value

    assert outcome(report["rounds"], tmp_path / "killed") == outcome(reference["rounds"], tmp_path / "clean")
    assert report["best_round"] == reference["best_round"] and report["stopped"] == reference["stopped"]


LEAK = "water evaporates from the warm sea rises cools into clouds falls as rain and flows back to the sea"
LEARN_EVAL = [*EVAL, {"instruction": "Describe the water cycle in one sentence.", "output": LEAK}]


def _teacher_reply(contaminated: str | None = None):
    """The scripted Self-Instruct teacher; it answers a bare task (the learnability step asks it) as its
    instances do, and writes the evaluation's long reference into the output of ``contaminated``."""

    def reply(text: str) -> str:
        if "\nTask: " not in text and "Continue it with" not in text:
            return f"A helpful answer to: {text.lower()}"
        if contaminated and "Continue it with" not in text and task_of(text) == contaminated:
            return f" <none>\nOutput: As they say, {LEAK}."
        return stateless_reply(text)

    return reply


class LearnStudent(ScriptedEngine):
    """Scores 0 on the evaluation; on generated tasks it says what the teacher says, except on ``fails``."""

    def __init__(self, model_path: str, fails: set[str]):
        def reply(text: str) -> str:
            if any(text.startswith(r["instruction"]) for r in LEARN_EVAL):
                return "no idea"
            return "I do not know." if text in fails else f"A helpful answer to: {text.lower()}"

        super().__init__(reply, model_id=model_path)


def test_learnability_keeps_exactly_the_rows_the_student_fails_and_counts_decontamination(
    tmp_path, tiny_model_dir
):
    """refine --learnability: of the round's candidates (3 per kept row), the two rows the scripted student
    gets wrong are kept, nothing else; their scores are in the rows; the candidate that copies an evaluation
    reference is dropped by the decontamination step and counted per set in the report and its page."""
    from dataclasses import replace

    from hf_synth import SelfInstruct

    config = _config(
        rounds=1,
        instructions_per_round=2,
        learnability=True,
        learnability_candidates=3,
        focus_k=0,
        student_model=str(tiny_model_dir),
    )
    # the candidates round 1 generates (untargeted, seed + 1): known before the loop runs
    si = replace(config.generation, num_instructions=6, focus_skills=[], seed=config.seed + 1)
    candidates = SelfInstruct(ScriptedEngine(_teacher_reply()), si).run(Dataset.from_list(SEEDS)).dataset
    names = list(candidates["instruction"])
    assert len(set(names)) == len(names) >= 4
    contaminated, fails = names[0], {names[2], names[3]}
    students: list[str] = []

    def load_student(c):
        students.append(c.model)
        return LearnStudent(c.model, fails)

    out = tmp_path / "learn"
    result = Refine(ScriptedEngine(_teacher_reply(contaminated)), config, out, load_student=load_student).run(
        Dataset.from_list(SEEDS), Dataset.from_list(LEARN_EVAL)
    )
    assert sorted(result.dataset["instruction"]) == sorted(fails)
    assert all(s["learnability_gap"] == 1.0 for s in result.dataset["scores"])
    assert all(s["learnability_teacher_quality"] == 1.0 for s in result.dataset["scores"])
    generation = result.report["rounds"][1]["generation"]
    learn = generation["learnability"]
    assert (
        learn["kept"] == 2
        and learn["candidates"] == len(names) - 1
        and learn["student"] == str(tiny_model_dir)
    )
    assert learn["already_answered"] == len(names) - 3 and learn["mean_gap_kept"] == 1.0
    assert generation["decontamination"] == {"evaluation": 1}
    assert result.report["decontamination"]["dropped_per_set"] == {"evaluation": 1}
    assert generation["dropped"]["student_already_answers"] == len(names) - 3
    rejected = {r["instruction"]: r for r in load_from_disk(str(out / "round-1" / "rejected"))}
    assert rejected[contaminated]["refine_reasons"][0].startswith(
        "contaminated:evaluation output shares 13-gram"
    )
    assert "learnability_gap" not in (rejected[contaminated]["scores"] or {}) or (
        rejected[contaminated]["scores"]["learnability_gap"] is None
    )
    assert students.count(str(tiny_model_dir)) == 2  # round-0 evaluation and round 1's learnability answers
    page = (out / "refine_report.html").read_text()
    assert "evaluation: 1" in page and "Learnability: the kept rows" in page and "2 of 5" in page


def test_learnability_settings_are_checked_and_reach_the_command_line():
    with pytest.raises(ValueError, match="learnability_candidates must be >= 1"):
        _config(learnability=True, learnability_candidates=0.5)
    with pytest.raises(ValueError, match="learnability_min_teacher_quality"):
        _config(learnability_min_teacher_quality=2)
    from hf_synth.cli import build_parser

    args = build_parser().parse_args(
        [
            "refine",
            "--seeds",
            "s",
            "--eval",
            "e",
            "--output",
            "o",
            "--learnability",
            "--learnability-candidates",
            "4",
        ]
    )
    assert args.learnability is True and args.learnability_candidates == 4
