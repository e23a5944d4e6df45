"""ROUGE-L as an ``evaluate`` module that loads offline from inside the hf-synth package.

``evaluate.load("rouge")`` fetches its script from the Hub; this module needs nothing but the installed
package. Load it with ``hf_synth.load_rouge_l()`` (or ``evaluate.load(<path of this folder>)``).

Two uses:

* ``compute(predictions=[...], references=[[...], ...])``: per prediction, the maximum ROUGE-L F against
  its references, plus the mean.
* ``compute(predictions=[...], references=[[] ...], pool=[...], threshold=0.7)``: Self-Instruct's greedy
  novelty decision of each prediction against ``pool`` and the predictions kept before it (compiled;
  ~41,000 prompts in seconds; ``pool=[]`` filters a corpus against itself).
"""

import datasets
import evaluate

from hf_synth.filters.rouge import RougeLIndex
from hf_synth.filters.rouge_fast import greedy_novelty_fast

_DESCRIPTION = "ROUGE-L F-measure (LCS based) with rouge_score's default tokeniser, exact, with pruning."
_KWARGS_DESCRIPTION = """
Args:
    predictions: list of texts to score.
    references: one list of reference texts per prediction (may be empty when ``pool`` is given).
    pool: optional list of texts; switches to the greedy novelty filter against it.
    threshold: novelty threshold (default 0.7): kept if the best ROUGE-L F is below it.
Returns:
    rougeL: per-prediction best ROUGE-L F (pool mode: the F that dropped a prediction; for a kept one the
        best F among pairs that needed an exact check, 0.0 if none did); rougeL_mean: their mean;
    nearest: index of that match (in the references, or in pool + predictions), -1 if none;
    keep: (pool mode only) the novelty decision per prediction, exact and compiled (numba).
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class RougeL(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Lin, Chin-Yew. ROUGE: a package for automatic evaluation of summaries. 2004.",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("string"),
                    "references": datasets.Sequence(datasets.Value("string")),
                }
            ),
        )

    def _compute(self, predictions, references, pool=None, threshold=0.7):
        if pool is not None:
            result = greedy_novelty_fast(predictions, threshold, pool=list(pool))
            scores = [float(s) for s in result.score]
            return {
                "rougeL": scores,
                "rougeL_mean": sum(scores) / len(scores) if scores else 0.0,
                "nearest": [int(n) for n in result.nearest],
                "keep": [bool(k) for k in result.keep],
            }
        scores, nearest = [], []
        for prediction, refs in zip(predictions, references, strict=True):
            match = RougeLIndex(refs).best_match(prediction)
            scores.append(match.score)
            nearest.append(match.index)
        return {
            "rougeL": scores,
            "rougeL_mean": sum(scores) / len(scores) if scores else 0.0,
            "nearest": nearest,
        }
