"""The closed loop: generate -> curate -> fine-tune a student -> evaluate it on held-out tasks -> steer the next
round's generation toward the skills where the student is weakest.

Every step leaves its result under the output folder and is skipped when it is already there, so a killed
run resumes at the step it was in (Self-Instruct's own checkpoints and completion journal cover the middle
of a generation step):

    OUTPUT/eval/round-0.json, round-0.jsonl     the untrained student's scores and answers
    OUTPUT/round-K/generate/                    Self-Instruct checkpoints of round K
    OUTPUT/round-K/data/, rejected/             rows kept (with ``refine_round``) and dropped in round K
    OUTPUT/round-K/student/                     the student fine-tuned on rounds 1..K (a model folder)
    OUTPUT/eval/round-K.json, round-K.jsonl     its scores and answers
    OUTPUT/refine_report.json, refine_report.html
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from datasets import Dataset, concatenate_datasets, load_from_disk

from ..atomic import atomic_folder, atomic_write_text
from ..checkpoint import Checkpointer
from ..engine.default_model import DEFAULT_MODEL_ID
from ..engine.engine_config import EngineConfig, SamplingParams
from ..engine.protocol import Engine
from ..filters.decontaminate import Decontaminator, contamination_counts
from ..filters.rouge import RougeLIndex
from ..progress import datasets_bars_off
from ..results import run_diversity
from ..rows import config_fingerprint, fingerprint_rows
from ..run_folder import save_dataset, write_jsonl
from .evaluation import choose_focus, eval_prompt, eval_rows, score_answers
from .refine_config import RefineConfig

logger = logging.getLogger(__name__)


@dataclass
class RefineResult:
    """What :meth:`Refine.run` returns: the accumulated training data and the report (also on disk)."""

    dataset: Dataset
    report: dict[str, Any]


def fine_tune(dataset: Dataset, base: str, out: Path, config: RefineConfig) -> dict[str, Any]:
    """Fine-tune ``base`` on the ``messages`` of ``dataset`` with TRL's SFTTrainer (LoRA merged back when
    ``use_lora``), save the model and tokenizer to ``out`` (atomically: :func:`hf_synth.atomic.atomic_folder`).
    Returns the training record (the caller keeps it as the step's checkpoint entry)."""
    import torch

    cuda = torch.cuda.is_available()
    with atomic_folder(out) as tmp:
        return _train(dataset, base, tmp, config, cuda)


def _train(dataset: Dataset, base: str, tmp: Path, config: RefineConfig, cuda: bool) -> dict[str, Any]:
    from trl import SFTConfig, SFTTrainer

    from ..training import cpu_friendly_defaults

    args = SFTConfig(
        output_dir=str(tmp),
        num_train_epochs=config.num_train_epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.train_batch_size,
        learning_rate=config.learning_rate,
        max_length=config.max_length,
        logging_steps=10,
        save_strategy="no",
        seed=config.seed,
        disable_tqdm=False,
        activation_checkpointing=cuda,  # saves memory on a GPU; on a CPU it only costs time
        **cpu_friendly_defaults(),
    )
    peft_config = None
    if config.use_lora:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=config.lora_r, lora_alpha=2 * config.lora_r, target_modules="all-linear", task_type="CAUSAL_LM"
        )
    started = time.perf_counter()
    trainer = SFTTrainer(
        model=base, args=args, train_dataset=dataset.select_columns(["messages"]), peft_config=peft_config
    )
    metrics = dict(trainer.train().metrics)
    loss = metrics.get("train_loss", float("nan"))
    if not math.isfinite(loss):
        raise RuntimeError(f"Fine-tuning the student gave a non-finite loss ({loss}); lower learning_rate.")
    model = trainer.model.merge_and_unload() if config.use_lora else trainer.model
    model.save_pretrained(str(tmp))
    trainer.processing_class.save_pretrained(str(tmp))
    record = {
        "train_loss": round(float(loss), 4),
        "steps": int(trainer.state.global_step),
        "rows": len(dataset),
        "seconds": round(time.perf_counter() - started, 1),
        "base": base,
        "lora": config.use_lora,
    }
    return record


class Refine:
    """Generate with a teacher, fine-tune a student, evaluate it, and target the next round at its weak
    skills, for ``config.rounds`` rounds (in the style of a TRL trainer: config beside it, ``run()``).

    Args:
        teacher: The engine that generates (any backend, a server included).
        config: :class:`RefineConfig`.
        output_dir: Where every step's result goes (and where a killed run resumes from).
        load_student: ``EngineConfig -> Engine`` for the student's evaluation (default
            :func:`hf_synth.engine.load_engine`); tests pass tiny models here.
        overwrite: Discard the results of an earlier run in ``output_dir``.
    """

    def __init__(
        self,
        teacher: Engine,
        config: RefineConfig | None = None,
        output_dir: str | Path = "refine-out",
        *,
        load_student=None,
        overwrite: bool = False,
    ) -> None:
        from ..engine import load_engine

        self.teacher = teacher
        self.config = config or RefineConfig()
        self.output = Path(output_dir)
        self.load_student = load_student or load_engine
        self.overwrite = overwrite
        #: Every step's record once it is done (generation, training, evaluation): what a re-run reuses.
        self.checkpoints = Checkpointer(self.output / "checkpoints")

    # ------------------------------------------------------------------ pieces
    def student_base(self) -> str:
        """The student's starting weights: ``student_model``, else the teacher's model."""
        if self.config.student_model:
            return self.config.student_model
        if self.teacher.model_id == DEFAULT_MODEL_ID:
            from ..engine import default_model_path

            return str(default_model_path())
        if getattr(self.teacher, "backend", "") == "server":
            raise ValueError(
                "A served teacher has no local weights to fine-tune: name the student (student_model=)."
            )
        return self.teacher.model_id

    def _evaluate(self, name: str, model: str, rows, skills) -> dict[str, Any]:
        entry = f"eval/{name}.json"  # the step's checkpoint entry; OUTPUT/eval/ has a copy to read
        if self.checkpoints.has_json(entry):
            return self.checkpoints.load_json(entry)
        engine = self.load_student(EngineConfig(model=model))
        started = time.perf_counter()
        outputs = engine.generate(
            [eval_prompt(r) for r in rows],
            SamplingParams(max_new_tokens=self.config.eval_max_new_tokens, temperature=0),
            desc=f"Evaluating ({name})",
        )
        answers = [o.text.strip() for o in outputs]
        scored = score_answers(answers, rows, skills)
        per_row = scored.pop("scores")
        record = {
            **scored,
            "model": model,
            "tokens": sum(o.completion_tokens for o in outputs),
            "seconds": round(time.perf_counter() - started, 1),
        }
        write_jsonl(
            self.output / "eval" / f"{name}.jsonl",
            [
                {**row, "skill": skill, "answer": answer, "rouge_l": score}
                for row, skill, answer, score in zip(rows, skills, answers, per_row, strict=True)
            ],
        )
        atomic_write_text(self.output / "eval" / f"{name}.json", json.dumps(record, indent=2))
        self.checkpoints.save_json(record, entry)
        return record

    def _generate(
        self,
        k: int,
        seeds: Dataset,
        focus: list[str],
        accumulated: Dataset | None,
        eval_index,
        decontaminator,
        student: str,
    ):
        folder = self.output / f"round-{k}"
        entry = f"round-{k}/generate.json"
        if self.checkpoints.has_json(entry) and (folder / "data" / "state.json").is_file():
            return load_from_disk(str(folder / "data")), self.checkpoints.load_json(entry)
        from ..filters import decontaminate_filter, reason_key, run_filters
        from ..self_instruct import SelfInstruct

        config = self.config
        wanted = config.instructions_per_round
        if config.learnability:  # candidates to choose from
            wanted = math.ceil(config.learnability_candidates * config.instructions_per_round)
        si_config = replace(
            config.generation,
            num_instructions=wanted,
            focus_skills=list(focus),
            seed=config.seed + k,
        )
        tokens_before, started = self.teacher.stats.completion_tokens, time.perf_counter()
        result = SelfInstruct(self.teacher, si_config, checkpoint_dir=folder / "generate").run(seeds)
        new = result.dataset
        columns = new.column_names
        earlier = RougeLIndex(accumulated["instruction"] if accumulated is not None else [])
        reasons: list[list[str]] = []
        for text in new["instruction"]:
            why = []
            if (
                eval_index.best_match(text, stop_at=config.overlap_threshold).score
                >= config.overlap_threshold
            ):
                why.append("overlaps_evaluation")
            elif (
                earlier.best_match(text, stop_at=config.generation.rouge_l_threshold).score
                >= config.generation.rouge_l_threshold
            ):
                why.append("repeats_earlier_round")
            reasons.append(why)
        new = new.add_column("refine_reasons", reasons)
        # the filter step's decontamination: a 13-gram shared with any evaluation instruction, input or
        # reference output (the ROUGE-L check above catches short paraphrased instructions, which have no 13-gram)
        new = decontaminate_filter(new, decontaminator=decontaminator)
        if config.filters:
            new = run_filters(new, config.filters)
        new = new.map(lambda r: {"refine_reasons": r["refine_reasons"] + list(r["filter_reasons"])})
        learnability = None
        if config.learnability:
            new, learnability = self._select_learnable(new, student, folder)
            if "scores" not in columns:
                columns = [*columns, "scores"]
        kept = new.filter(lambda r: not r, input_columns="refine_reasons").select_columns(columns)
        dropped = new.filter(lambda r: bool(r), input_columns="refine_reasons")
        kept = kept.add_column("refine_round", [k] * len(kept))
        counts: dict[str, int] = {}
        for row in dropped["refine_reasons"]:
            for reason in map(reason_key, row):
                counts[reason] = counts.get(reason, 0) + 1
        record = {
            "generated_kept_by_self_instruct": len(result.dataset),
            "self_instruct_rejected": len(result.rejected),
            "added": len(kept),
            "dropped": counts,
            # rows dropped per evaluation set (the decontaminate step's own count), zeros included
            "decontamination": {s.name: 0 for s in decontaminator.sets} | contamination_counts(counts),
            "focus_skills": list(focus),
            "tokens": self.teacher.stats.completion_tokens - tokens_before,
            "seconds": round(time.perf_counter() - started, 1),
        }
        if learnability is not None:
            record["learnability"] = learnability
        save_dataset(dropped, folder / "rejected")
        save_dataset(kept, folder / "data")
        self.checkpoints.save_json(record, entry)  # last: the step is done
        return kept, record

    def _select_learnable(self, new: Dataset, student: str, folder: Path) -> tuple[Dataset, dict[str, Any]]:
        """Score the rows that survived curation with the learnability step (the current ``student`` and the
        teacher answer each), keep the ``instructions_per_round`` the student gets most wrong: the others get
        the step's reason in ``refine_reasons``; every scored row gets its scores in ``scores``."""
        from ..filters import add_filter_columns, learnability_filter

        config = self.config
        survivors = [i for i, why in enumerate(new["refine_reasons"]) if not why]
        record: dict[str, Any] = {
            "student": student,
            "candidates": len(survivors),
            "min_teacher_quality": config.learnability_min_teacher_quality,
        }
        scores: list[dict[str, Any]] = [{} for _ in range(len(new))]
        reasons: list[list[str]] = [[] for _ in range(len(new))]
        if survivors:
            scored = learnability_filter(
                new.select(survivors).select_columns(
                    [c for c in ("instruction", "input", "output") if c in new.column_names]
                ),
                self.load_student(EngineConfig(model=student)),
                self.teacher,
                keep=config.instructions_per_round,
                min_teacher_quality=config.learnability_min_teacher_quality,
                max_new_tokens=config.eval_max_new_tokens,
                checkpointer=Checkpointer(folder / "learnability"),
            )
            for i, row_scores, row_reasons in zip(
                survivors, scored["scores"], scored["filter_reasons"], strict=True
            ):
                scores[i] = {k: v for k, v in row_scores.items() if k.startswith("learnability_")}
                reasons[i] = list(row_reasons)
            gaps = [scores[i]["learnability_gap"] for i in survivors]
            chosen = [scores[i]["learnability_gap"] for i in survivors if not reasons[i]]
            record.update(
                kept=len(chosen),
                below_quality_floor=sum("teacher_below_quality_floor" in reasons[i] for i in survivors),
                already_answered=sum("student_already_answers" in reasons[i] for i in survivors),
                mean_gap_candidates=round(sum(gaps) / len(gaps), 4),
                mean_gap_kept=round(sum(chosen) / len(chosen), 4) if chosen else None,
                top=[
                    {"instruction": new[i]["instruction"], **scores[i]}
                    for i in sorted(
                        (i for i in survivors if not reasons[i]), key=lambda i: -scores[i]["learnability_gap"]
                    )[:10]
                ],
            )
        else:
            record.update(kept=0, below_quality_floor=0, already_answered=0)
        new = add_filter_columns(new, scores, [[] for _ in range(len(new))])
        new = new.map(
            lambda why, i: {"refine_reasons": why + reasons[i]},
            input_columns="refine_reasons",
            with_indices=True,
        )
        return new, record

    # ------------------------------------------------------------------ the loop
    @datasets_bars_off
    def run(self, seeds: Dataset, eval_set: Dataset) -> RefineResult:
        """Round 0 evaluates the untrained student; rounds 1..``rounds`` generate, curate, fine-tune and
        evaluate, stopping early after ``patience`` rounds without a better overall score."""
        from ..curation import default_skill_classifier, load_taxonomy
        from ..self_instruct import prepare_seed_pool

        config = self.config
        rows = eval_rows(eval_set)
        pool = prepare_seed_pool(seeds, config.generation)
        seed_index = RougeLIndex(pool["instruction"])
        overlapping = [
            r["instruction"]
            for r in rows
            if seed_index.best_match(r["instruction"], stop_at=config.overlap_threshold).score
            >= config.overlap_threshold
        ]
        if overlapping:
            raise ValueError(
                f"{len(overlapping)} evaluation instruction(s) overlap the seeds (ROUGE-L >= "
                f"{config.overlap_threshold}), e.g. {overlapping[0]!r}: remove them from the evaluation set or "
                "the seeds, so the student is not scored on what the generator was shown."
            )
        base = self.student_base()
        self.checkpoints.bind(
            {
                "config": config_fingerprint(config, exclude=("rounds", "patience")),
                "teacher": self.teacher.model_id,
                "student": base,
                "seeds": fingerprint_rows(pool),
                "eval": fingerprint_rows(Dataset.from_list(rows)),
            },
            overwrite=self.overwrite,
        )
        if self.overwrite:
            for stale in [*self.output.glob("round-*"), self.output / "eval"]:
                shutil.rmtree(stale, ignore_errors=True)
        skills = default_skill_classifier().predict([r["instruction"] for r in rows])
        allowed = set(load_taxonomy())
        eval_index = RougeLIndex(r["instruction"] for r in rows)
        decontaminator = Decontaminator(
            {
                "evaluation": [
                    text for r in rows for text in (r["instruction"], r["input"], r["output"]) if text
                ]
            }
        )
        report: dict[str, Any] = {
            "teacher": self.teacher.model_id,
            "student_base": base,
            "eval_rows": len(rows),
            "eval_rows_per_skill": {s: skills.count(s) for s in sorted(set(skills))},
            "measure": "ROUGE-L F of the student's greedy answer against the reference output",
            "selection": (
                f"learnability: the {config.instructions_per_round} of "
                f"{config.learnability_candidates:g}x as many candidates the current student gets most wrong "
                f"(teacher quality >= {config.learnability_min_teacher_quality:g})"
                if config.learnability
                else "every generated row that survives curation"
            ),
            "rounds": [],
        }
        evaluation = self._evaluate("round-0", base, rows, skills)
        report["rounds"].append(
            {"round": 0, "eval": evaluation, "decision": "baseline: the untrained student"}
        )
        best, best_round, stale = evaluation["rouge_l"], 0, 0
        previous = evaluation["per_skill"]
        focus = choose_focus(None, previous, config.focus_k, allowed)
        report["rounds"][0]["next_focus"] = {s: why for s, why in focus}
        accumulated: Dataset | None = None
        report["stopped"] = f"ran all {config.rounds} round(s)"
        for k in range(1, config.rounds + 1):
            previous_student = base if k == 1 else str(self.output / f"round-{k - 1}" / "student")
            new, generation = self._generate(
                k, seeds, [s for s, _ in focus], accumulated, eval_index, decontaminator, previous_student
            )
            generation["focus_reasons"] = {s: why for s, why in focus}
            accumulated = (
                new
                if accumulated is None
                else concatenate_datasets([accumulated, new.cast(accumulated.features)])
            )
            student = self.output / f"round-{k}" / "student"
            if self.checkpoints.has_json(f"round-{k}/training.json") and student.is_dir():
                training = self.checkpoints.load_json(f"round-{k}/training.json")
            else:
                if len(accumulated) == 0:
                    raise RuntimeError(f"Round {k} has no training data: no generated row survived curation.")
                training = fine_tune(accumulated, base, student, config)
                self.checkpoints.save_json(training, f"round-{k}/training.json")
            evaluation = self._evaluate(f"round-{k}", str(student), rows, skills)
            change = evaluation["rouge_l"] - best
            if change > 1e-6:
                best, best_round, stale = evaluation["rouge_l"], k, 0
                decision = f"improved to {evaluation['rouge_l']:.4f} (best so far)"
            else:
                stale += 1
                decision = (
                    f"no improvement over round {best_round} ({evaluation['rouge_l']:.4f} vs {best:.4f})"
                )
                if evaluation["rouge_l"] < report["rounds"][0]["eval"]["rouge_l"]:
                    decision += "; the student is worse than untrained"
            focus = choose_focus(previous, evaluation["per_skill"], config.focus_k, allowed)
            previous = evaluation["per_skill"]
            entry = {
                "round": k,
                "generation": generation,
                "training": training,
                "eval": evaluation,
                "accumulated_rows": len(accumulated),
                "decision": decision,
                "next_focus": {s: why for s, why in focus},
            }
            report["rounds"].append(entry)
            logger.info("Refine round %d: ROUGE-L %.4f (%s)", k, evaluation["rouge_l"], decision)
            if stale >= config.patience and k < config.rounds:
                report["stopped"] = (
                    f"stopped after round {k}: no improvement for {stale} round(s) (patience {config.patience})"
                )
                break
        decontaminated: dict[str, int] = {}
        for entry in report["rounds"][1:]:
            for name, n in entry["generation"].get("decontamination", {}).items():
                decontaminated[name] = decontaminated.get(name, 0) + n
        report["decontamination"] = {
            "ngram": decontaminator.ngram,
            "dropped_per_set": dict(sorted(decontaminated.items())),
        }
        report["best_round"] = best_round
        report["best_rouge_l"] = best
        report["best_student"] = (
            base if best_round == 0 else str(self.output / f"round-{best_round}" / "student")
        )
        dataset = accumulated if accumulated is not None else Dataset.from_list([])
        # the accumulated training data's diversity, ROUGE-L against the seed pool (in the card too)
        report["diversity"] = run_diversity(dataset, seeds=pool["instruction"])
        self._write_report(report)
        return RefineResult(dataset=dataset, report=report)

    def _write_report(self, report: dict[str, Any]) -> None:
        from .refine_report import write_html

        atomic_write_text(
            self.output / "refine_report.json", json.dumps(report, indent=2, ensure_ascii=False) + "\n"
        )
        write_html(report, self.output / "refine_report.html")
