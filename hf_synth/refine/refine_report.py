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


def write_html(report: dict[str, Any], path: str | Path) -> Path:
    """Write the report page to ``path``."""
    e = html.escape
    rows = []
    for r in report["rounds"]:
        generation = r.get("generation", {})
        training = r.get("training", {})
        focus = r.get("next_focus") or {}
        rows.append(
            "<tr>"
            f"<td>{r['round']}</td><td>{r['eval']['rouge_l']:.4f}</td>"
            f"<td>{generation.get('added', '')}</td><td>{r.get('accumulated_rows', '')}</td>"
            f"<td>{e(', '.join(f'{k}: {v}' for k, v in generation.get('dropped', {}).items()))}</td>"
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
<table><tr><th>round</th><th>ROUGE-L</th><th>rows added</th><th>rows in total</th><th>dropped</th>
<th>train loss</th><th>generate s</th><th>train s</th><th>eval s</th><th>decision</th><th>next round's focus</th></tr>
{"".join(rows)}
</table>
</body></html>
"""
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    return path
