"""The HTML page of a refine run: score curves overall and per skill, the data added and the decision of
each round (every text escaped)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any


def _plot(report: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = [r["round"] for r in report["rounds"]]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    left.plot(rounds, [r["eval"]["rouge_l"] for r in report["rounds"]], marker="o", color="black")
    left.set(title="Evaluation ROUGE-L (all tasks)", xlabel="round", ylabel="ROUGE-L F", xticks=rounds)
    skills = sorted({s for r in report["rounds"] for s in r["eval"]["per_skill"]})
    for skill in skills:
        right.plot(
            rounds,
            [r["eval"]["per_skill"].get(skill, float("nan")) for r in report["rounds"]],
            marker=".",
            label=skill,
        )
    right.set(title="Per skill", xlabel="round", xticks=rounds)
    right.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _gap(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _sets(report: dict[str, Any]) -> str:
    counts = report.get("decontamination", {}).get("dropped_per_set", {})
    return ", ".join(f"{k}: {v}" for k, v in counts.items()) or "none"


def _learnability_rows(report: dict[str, Any], limit: int = 20) -> str:
    """The kept rows with the largest learnability gaps of each round (read from the report's own
    ``top_learnable`` lists), as table rows."""
    e = html.escape
    cells = []
    for r in report["rounds"]:
        for row in r.get("generation", {}).get("learnability", {}).get("top", [])[:limit]:
            cells.append(
                f"<tr><td>{r['round']}</td><td>{e(row['instruction'])}</td><td>{row['learnability_gap']:.3f}</td>"
                f"<td>{row['learnability_student_rouge_l']:.3f}</td><td>{row['learnability_teacher_quality']:.3f}</td></tr>"
            )
    if not cells:
        return ""
    return (
        "<h2>Learnability: the kept rows the student got most wrong</h2><table><tr><th>round</th>"
        "<th>instruction</th><th>gap</th><th>student ROUGE-L to teacher</th><th>teacher quality</th></tr>"
        + "".join(cells)
        + "</table>"
    )


def _diversity(report: dict[str, Any]) -> str:
    """The accumulated training data's diversity figures (``report["diversity"]``), as a table."""
    from ..curation.diversity import DIVERSITY_FIELDS

    figures = report.get("diversity") or {}
    cells = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{figures[k]}</td></tr>"
        for k in DIVERSITY_FIELDS
        if figures.get(k) is not None
    )
    if not cells:
        return ""
    reference = figures.get("rouge_l_reference")
    return (
        "<h2>Diversity of the accumulated training data</h2>"
        + (f"<p>ROUGE-L shares against the {html.escape(reference)}.</p>" if reference else "")
        + f'<table class="diversity">{cells}</table>'
    )


def write_html(report: dict[str, Any], path: str | Path) -> Path:
    """Write the report page to ``path``."""
    e = html.escape
    rows = []
    for r in report["rounds"]:
        generation = r.get("generation", {})
        training = r.get("training", {})
        focus = r.get("next_focus") or {}
        decontaminated = generation.get("decontamination", {})
        learn = generation.get("learnability")
        learn_cell = (
            f"{learn['kept']} of {learn['candidates']}; gap {_gap(learn.get('mean_gap_kept'))} kept, "
            f"{_gap(learn.get('mean_gap_candidates'))} all; {learn['below_quality_floor']} below the floor"
            if learn
            else ""
        )
        rows.append(
            "<tr>"
            f"<td>{r['round']}</td><td>{r['eval']['rouge_l']:.4f}</td>"
            f"<td>{generation.get('added', '')}</td><td>{r.get('accumulated_rows', '')}</td>"
            f"<td>{e(', '.join(f'{k}: {v}' for k, v in generation.get('dropped', {}).items()))}</td>"
            f"<td>{e(', '.join(f'{k}: {v}' for k, v in decontaminated.items()) or ('0' if generation else ''))}</td>"
            f"<td>{e(learn_cell)}</td>"
            f"<td>{training.get('train_loss', '')}</td><td>{generation.get('seconds', '')}</td>"
            f"<td>{training.get('seconds', '')}</td><td>{r['eval'].get('seconds', '')}</td>"
            f"<td>{e(r['decision'])}</td>"
            f"<td>{e('; '.join(f'{k} ({v})' for k, v in focus.items()))}</td>"
            "</tr>"
        )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>hf-synth refine report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;font-size:13px}}</style>
</head><body>
<h1>hf-synth refine report</h1>
<p>Teacher <code>{e(report["teacher"])}</code>, student from <code>{e(report["student_base"])}</code>;
{report["eval_rows"]} evaluation tasks; measure: {e(report["measure"])}.</p>
<p><b>{e(report["stopped"])}</b>. Best: round {report["best_round"]} (ROUGE-L {report["best_rouge_l"]:.4f},
<code>{e(report["best_student"])}</code>).</p>
<img alt="scores per round" src="data:image/png;base64,{_plot(report)}">
<p>Selection: {e(report.get("selection", "every generated row that survives curation"))}.
Decontamination ({report.get("decontamination", {}).get("ngram", 13)}-grams shared with the evaluation file), rows
dropped per set: {e(_sets(report))}.</p>
<table><tr><th>round</th><th>ROUGE-L</th><th>rows added</th><th>rows in total</th><th>dropped</th>
<th>decontaminated (per set)</th><th>learnability (kept of candidates; mean gap)</th>
<th>train loss</th><th>generate s</th><th>train s</th><th>eval s</th><th>decision</th><th>next round's focus</th></tr>
{"".join(rows)}
</table>
{_diversity(report)}
{_learnability_rows(report)}
</body></html>
"""
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    return path
