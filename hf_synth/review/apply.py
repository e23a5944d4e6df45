"""Turn a run and its review decisions into the reviewed dataset, and the figures of the review."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Dataset, Features, List, Value

from ..results import SavableResult, run_diversity
from ..rows import chat_messages
from .decisions import EDITABLE, Decision
from .review_set import ReviewItem, ReviewSet, drop_reasons, rate

logger = logging.getLogger(__name__)

REVIEW_FEATURE = {
    "decision": Value("string"),
    "reason": Value("string"),
    "reviewer": Value("string"),
    "time": Value("string"),
    "edited": List(Value("string")),
}
ORIGINAL_FEATURE = {f: Value("string") for f in EDITABLE}
HUMAN_PREFIX = "human:"


def review_record(decision: Decision | None) -> dict[str, Any]:
    """The ``review`` column of one row (all None for a row nobody reviewed)."""
    if decision is None:
        return {"decision": None, "reason": None, "reviewer": None, "time": None, "edited": []}
    return {
        "decision": decision.decision,
        "reason": decision.reason,
        "reviewer": decision.reviewer,
        "time": decision.time,
        "edited": sorted(decision.edits),
    }


def _tally(verdicts: Iterable[tuple[str, str | None, str | None, str | None]]) -> dict[str, Any]:
    """The counts of :func:`rate` overall, by skill and by evolution operation, and the reject reasons, of
    ``(decision, skill, operation, reason)`` verdicts (a ``None`` skill or operation is counted overall only)."""
    overall: Counter = Counter()
    by_skill: dict[str, Counter] = {}
    by_op: dict[str, Counter] = {}
    reasons: Counter = Counter()
    for decision, skill, operation, reason in verdicts:
        overall[decision] += 1
        if skill:
            by_skill.setdefault(skill, Counter())[decision] += 1
        if operation:
            by_op.setdefault(operation, Counter())[decision] += 1
        if reason:
            reasons[reason] += 1
    return {
        **rate(overall),
        "by_skill": {k: rate(v) for k, v in sorted(by_skill.items())},
        "by_operation": {k: rate(v) for k, v in sorted(by_op.items())},
        "reject_reasons": dict(reasons.most_common()),
    }


def review_figures(review: ReviewSet) -> dict[str, Any]:
    """Reviewed / accepted / edited / rejected and the acceptance rate, overall and by skill and by
    evolution operation (rows the run kept); the reviewer's verdict on rows the run's filters dropped; the
    reject reasons. For ``summary.json`` and the dataset card."""
    verdicts: list[tuple[str, str | None, str | None, str | None]] = []
    filtered: Counter = Counter()
    filtered_by_reason: dict[str, Counter] = {}
    reviewers: set[str] = set()
    for item in review.items:
        decision = review.decision(item.key)
        if decision is None:
            continue
        if decision.reviewer:
            reviewers.add(decision.reviewer)
        if item.kind == "rejected":
            verdict = "judged_bad" if decision.decision == "rejected" else "judged_good"
            filtered[verdict] += 1
            for reason in item.reasons or ["(none)"]:
                filtered_by_reason.setdefault(reason, Counter())[verdict] += 1
            continue
        verdicts.append((decision.decision, item.skill or "(unknown)", item.operation, decision.reason))
    kept_total = sum(1 for item in review.items if item.kind == "kept")
    figures: dict[str, Any] = {
        "rows_in_review": kept_total,
        "run_rows": len(review.dataset),
        "sample": review.session["sample"],
        "seed": review.session["seed"],
        **_tally(verdicts),
        "reviewers": sorted(reviewers),
        "stale_decisions": review.stale_decisions(),
    }
    if review.session["include_rejected"]:
        figures["filtered_rows"] = {
            "in_review": sum(1 for item in review.items if item.kind == "rejected"),
            "reviewed": filtered["judged_good"] + filtered["judged_bad"],
            "judged_bad": filtered["judged_bad"],
            "judged_good": filtered["judged_good"],
            "by_reason": {
                reason: {"reviewed": c["judged_good"] + c["judged_bad"], "judged_bad": c["judged_bad"]}
                for reason, c in sorted(filtered_by_reason.items())
            },
        }
    return figures


def figures_lines(figures: dict[str, Any]) -> list[str]:
    """The review figures as lines for a terminal (``hf-synth review --apply`` and ``hf-synth report``)."""
    rate = figures.get("acceptance_rate")
    lines = [
        f"human review: {figures['reviewed']} of {figures['rows_in_review']} rows reviewed: accepted "
        f"{figures['accepted']}, edited {figures['edited']}, rejected {figures['rejected']}"
        + (f" (acceptance {rate:.1%})" if rate is not None else "")
    ]
    for title, key in (("skill", "by_skill"), ("operation", "by_operation")):
        for name, row in (figures.get(key) or {}).items():
            lines.append(
                f"  {title} {name:<24} {row['reviewed']:4d} reviewed, acceptance {row['acceptance_rate']:.1%}"
            )
    for reason, count in (figures.get("reject_reasons") or {}).items():
        lines.append(f"  rejected {count:4d}  human:{reason}")
    filtered = figures.get("filtered_rows")
    if filtered and filtered["reviewed"]:
        lines.append(
            f"  rows the filters dropped, judged by the reviewer: {filtered['reviewed']} "
            f"({filtered['judged_bad']} rightly dropped, {filtered['judged_good']} good)"
        )
    if figures.get("stale_decisions"):
        lines.append(f"  {figures['stale_decisions']} decisions on rows changed since were not applied")
    return lines


def figures_from_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Review figures recomputed from the ``review`` column of a reviewed dataset's kept and rejected rows
    (for a dataset without the ``summary.json`` that ``--apply`` writes)."""
    verdicts: list[tuple[str, str | None, str | None, str | None]] = []
    for row in rows:
        review = row.get("review") or {}
        decision = review.get("decision")
        if decision not in ("accepted", "edited", "rejected"):
            continue
        if decision == "rejected" and not any(str(r).startswith(HUMAN_PREFIX) for r in drop_reasons(row)):
            continue  # a filter-dropped row the reviewer agreed with: not one of the dataset's rows
        verdicts.append((decision, row.get("skill"), row.get("evolution_op"), review.get("reason")))
    tally = _tally(verdicts)
    kept = sum(1 for row in rows if "review" in row and row.get("review", {}).get("decision") != "rejected")
    return {"rows_in_review": kept + tally["rejected"], **tally}


@dataclass
class ReviewedRun(SavableResult):
    """The result of :func:`apply_review`.

    Args:
        dataset: The rows kept after review (edited rows carry their new text, the original in
            ``review_original``), with a ``review`` column.
        rejected: The run's rejected rows plus the rows a reviewer rejected (reason ``human:<reason>``),
            as plain rows (their columns differ between stages).
        figures: See :func:`review_figures`.
        run_dir: The reviewed run folder (its summary, config and card history go into the saved folder).

    ``save(folder)`` writes the reviewed dataset as a new run folder (see :func:`save_reviewed`) and
    ``push_to_hub(repo_id)`` publishes it with the same card.
    """

    dataset: Dataset
    rejected: list[dict[str, Any]]
    figures: dict[str, Any]
    run_dir: Path | None = None

    def summary_data(self) -> dict[str, Any]:
        from ..run_folder import RunFolder

        summary = RunFolder(self.run_dir).read_summary() if self.run_dir is not None else {}
        summary["review"] = self.figures
        summary["diversity"] = run_diversity(self.dataset)  # of the rows left after the review
        return summary

    def config_data(self) -> str | None:
        from ..run_folder import RunFolder

        return RunFolder(self.run_dir).read_config_text() if self.run_dir is not None else None

    def build_card(self):
        return _reviewed_card(self, self.run_dir)


def _reasons_column(rejected_rows: list[dict[str, Any]]) -> str:
    if any("elimination_reasons" in r for r in rejected_rows):
        return "elimination_reasons"
    return "filter_reasons"


def _edited(row: dict[str, Any], decision: Decision) -> dict[str, Any]:
    row = dict(row)
    for name, text in decision.edits.items():
        row[name] = text
    if isinstance(row.get("messages"), list) and len(row["messages"]) == 2:  # user + assistant, rebuilt
        row["messages"] = chat_messages(row["instruction"], row.get("input") or "", row["output"])
    return row


def apply_review(run_dir: str | Path, *, skills: bool = True) -> ReviewedRun:
    """The reviewed dataset of an hf-synth run folder reviewed with ``hf-synth review`` (see
    :class:`ReviewedRun`). Rows nobody reviewed are kept unchanged; decisions made on text that has
    changed since are not applied (counted as ``stale_decisions``). ``skills``: label rows without a skill
    with the skill classifier, for the acceptance rate by skill."""
    review = ReviewSet(run_dir, skills=skills)
    try:
        if review.log.count == 0:
            raise ValueError(
                f"{review.folder} holds no decisions yet; review the run first with `hf-synth review {run_dir}`."
            )
        figures = review_figures(review)
        if figures["stale_decisions"]:
            logger.warning(
                "%d decisions were made on rows whose text has changed since (or that are gone); they are not "
                "applied",
                figures["stale_decisions"],
            )
        kept_items: dict[int, ReviewItem] = {
            item.index: item for item in review.all_by_key.values() if item.kind == "kept"
        }
        reasons_column = _reasons_column(review.rejected_rows)
        rejected = [dict(r) for r in review.rejected_rows]
        for item in review.all_by_key.values():
            if item.kind == "rejected":
                rejected[item.index]["review"] = review_record(review.decision(item.key))
        has_stage = any("stage" in r for r in review.rejected_rows)
        rows, originals = [], []
        for index in range(len(review.dataset)):
            item = kept_items[index]
            decision = review.decision(item.key)
            row = dict(item.row)
            if decision is not None and decision.decision == "rejected":
                row[reasons_column] = [*(row.get(reasons_column) or []), f"{HUMAN_PREFIX}{decision.reason}"]
                if has_stage:
                    row["stage"] = "human_review"
                if "eliminated" in row:
                    row["eliminated"] = True
                    row["elimination_reason"] = f"{HUMAN_PREFIX}{decision.reason}"
                row["review"] = review_record(decision)
                if row.get("review_original") is None:
                    row.pop("review_original", None)
                rejected.append(row)
                continue
            earlier = item.row.get("review_original")  # a reviewed dataset reviewed again
            if decision is not None and decision.decision == "edited":
                originals.append(earlier or {f: item.row.get(f) for f in EDITABLE})
                row = _edited(row, decision)
            else:
                originals.append(earlier)
            if decision is not None or not isinstance(item.row.get("review"), dict):
                row["review"] = review_record(decision)
            rows.append(row)
        features = Features(
            {**review.dataset.features, "review": REVIEW_FEATURE, "review_original": ORIGINAL_FEATURE}
        )
        for row, original in zip(rows, originals, strict=True):
            row["review_original"] = original
        # every row rejected: an empty dataset that still has the columns (from_list([]) has none, and
        # save_to_disk would then write features its arrow file lacks)
        dataset = (
            Dataset.from_list(rows, features=features)
            if rows
            else Dataset.from_dict({name: [] for name in features}, features=features)
        )
        return ReviewedRun(dataset=dataset, rejected=rejected, figures=figures, run_dir=Path(run_dir))
    finally:
        review.close()


def save_reviewed(result: ReviewedRun, run_dir: str | Path, output_dir: str | Path) -> dict[str, Path]:
    """Write a reviewed run like any run folder: ``dataset/``, ``data.jsonl``, ``rejected.jsonl``,
    ``summary.json`` (the run's summary plus ``review``), ``config.yaml`` and a dataset card that tells how
    the rows were made and how many a person checked (the same as ``result.save(output_dir)``)."""
    result.run_dir = Path(run_dir)
    return result.save(output_dir)


def _reviewed_card(result: ReviewedRun, run_dir: Path | None):
    """The card of a reviewed run: how the rows were made and how many a person checked."""
    from ..cards import step_card

    figures = result.figures
    dropped = Counter(r for row in result.rejected for r in drop_reasons(row))
    card = step_card(
        result.dataset,
        method="human review",
        tags=["human-reviewed"],
        steps=[
            f"Input: the hf-synth run `{run_dir}` ({figures['run_rows']} rows).",
            (
                f"A person reviewed {figures['reviewed']} of {figures['rows_in_review']} rows "
                + (
                    f"(a random sample of {figures['sample']}, seed {figures['seed']}) "
                    if figures["sample"]
                    else ""
                )
                + "in `hf-synth review`: accepted, corrected or rejected each with a reason."
            ),
            "Rejected rows moved to the rejected rows with reason `human:<reason>`; corrected rows keep their "
            "original text in `review_original`; every row's `review` column holds the decision, the reviewer "
            "and the time.",
        ],
        input_source=run_dir,
        rejected=len(result.rejected),
        dropped=dict(dropped),
        review=figures,
        diversity=result.summary_dict()["diversity"],
        columns=[
            (
                "review",
                "the person's decision on the row (accepted, edited, rejected or none), reason, reviewer, time",
            ),
            ("review_original", "the text before the person's correction (edited rows only)"),
        ],
    )
    return card
