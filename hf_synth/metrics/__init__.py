"""``evaluate`` modules shipped inside hf-synth, loadable without the Hub."""

from __future__ import annotations

from pathlib import Path

METRICS_DIR = Path(__file__).parent


def load_rouge_l(**kwargs):
    """Load the packaged ROUGE-L ``evaluate`` module (works offline)."""
    import evaluate

    return evaluate.load(str(METRICS_DIR / "rouge_l"), **kwargs)


__all__ = ["METRICS_DIR", "load_rouge_l"]
