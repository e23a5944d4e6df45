"""rouge_score's tokenisation, on its own so that the exact ROUGE-L (rouge.py) and its compiled kernels
(rouge_fast.py, imported by rouge.py only when first needed) both build on it without importing each other."""

from __future__ import annotations

from rouge_score.tokenizers import DefaultTokenizer

_TOKENIZER = DefaultTokenizer(use_stemmer=False)


def rouge_tokens(text: str) -> list[str]:
    """rouge_score's default tokens: lower-cased ASCII letters and digits, no stemming."""
    return _TOKENIZER.tokenize(text or "")
