"""Back-translation: instruction → pivot language → back, kept when it differs in wording but stays close in
meaning (an embedding-similarity band)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from datasets import Dataset

from ..checkpoint import Checkpointer
from ..engine import Engine, SamplingParams
from ..filters.dataset_filters import split_filtered
from ..filters.embedding import embed
from ..filters.heuristics import hygiene_reasons, normalized_words
from ..prompts import render_messages
from ..results import StepResult
from ..rows import add_messages, checkpointed_map, fingerprint_rows, row_ids
from .step_results import backtranslate_result, bind_teacher

TEMPLATE_TRANSLATE = "augment/translate"
_LABEL = re.compile(r"^\s*[*_]*\s*(?:translation|text)\s*[*_]*\s*:\s*", re.IGNORECASE)


def _clean(text: str) -> str:
    text = _LABEL.sub("", (text or "").strip(), count=1).strip()
    return re.split(r"\n\s*\n", text, maxsplit=1)[0].strip()


class Seq2SeqTranslator:
    """A translation model by path or Hub id (e.g. Helsinki-NLP/opus-mt-en-fr, a Marian model), run in
    batches with ``generate`` (transformers 5 has no translation pipeline any more)."""

    def __init__(self, model: str, batch_size: int = 16, max_new_tokens: int = 256) -> None:
        import torch
        from accelerate import PartialState
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self.model_id = model
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.model = AutoModelForSeq2SeqLM.from_pretrained(model).to(PartialState().device).eval()
        self.batch_size, self.max_new_tokens, self._torch = batch_size, max_new_tokens, torch

    def __call__(self, texts: list[str]) -> list[str]:
        results = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                texts[start : start + self.batch_size], return_tensors="pt", padding=True, truncation=True
            ).to(self.model.device)
            with self._torch.inference_mode():
                out = self.model.generate(**batch, max_new_tokens=self.max_new_tokens, do_sample=False)
            results.extend(t.strip() for t in self.tokenizer.batch_decode(out, skip_special_tokens=True))
        return results


def back_translate(
    dataset: Dataset,
    engine: Engine,
    *,
    pivot: str = "French",
    source_language: str = "English",
    min_similarity: float = 0.75,
    max_similarity: float = 0.98,
    embedding_model: str | None = None,
    sampling: SamplingParams | None = None,
    checkpointer: Checkpointer | None = None,
    name: str = "backtranslate",
    to_pivot_model: str | None = None,
    from_pivot_model: str | None = None,
    checkpoint_dir: str | Path | None = None,
    overwrite: bool = False,
    source: str | None = None,
) -> StepResult:
    """Translate each ``instruction`` into ``pivot`` and back with the LLM. Kept when the cosine of sentence
    embeddings to the original is within [``min_similarity``, ``max_similarity``) and the wording differs:
    reasons ``meaning_drift`` (too far), ``unchanged`` (same words or too close), ``empty``. Rows record
    ``pivot_language``, ``pivot_text``, ``parent_id``, ``scores.embedding_similarity``.

    ``to_pivot_model`` / ``from_pivot_model``: translation models (path or Hub id) to use instead of the LLM
    for either direction, e.g. a Marian model per language pair.

    Returns a :class:`~hf_synth.results.StepResult` (``kept, rejected = back_translate(...)``, or
    ``.save(folder)``); ``checkpoint_dir``, ``overwrite``, ``source`` and an ``engine`` given as an
    :class:`~hf_synth.engine.EngineConfig` as in :func:`~hf_synth.augment.paraphrase`."""
    given_engine = engine
    checkpointer, teacher, engine = bind_teacher(
        checkpointer,
        checkpoint_dir,
        engine,
        lambda ids: {
            "max_new_tokens": sampling.max_new_tokens if sampling is not None else None,
            "pivot": pivot,
            "model": ids[0],
            "to_pivot_model": to_pivot_model,
            "from_pivot_model": from_pivot_model,
            "input": fingerprint_rows(dataset),
        },
        overwrite=overwrite,
    )
    sampling = sampling or SamplingParams(max_new_tokens=192, temperature=0.3, top_p=0.95)
    ids = row_ids(dataset)
    base = Dataset.from_list(
        [
            {
                "id": f"{parent}-bt",
                "parent_id": parent,
                "original": row["instruction"] or "",
                "input": row.get("input") or "",
                "output": row.get("output") or "",
            }
            for parent, row in zip(ids, dataset, strict=True)
        ]
    )

    limit = sampling.max_new_tokens
    to_pivot = Seq2SeqTranslator(to_pivot_model, max_new_tokens=limit) if to_pivot_model else None
    from_pivot = Seq2SeqTranslator(from_pivot_model, max_new_tokens=limit) if from_pivot_model else None

    def _translate(texts: list[str], language: str, translator: Seq2SeqTranslator | None) -> list[str]:
        if translator is not None:
            return translator([t or " " for t in texts])
        prompts = [render_messages(TEMPLATE_TRANSLATE, language=language, text=t or " ") for t in texts]
        return [_clean(o.text) for o in engine.generate(prompts, sampling, desc=f"To {language}")]

    def _there_and_back(batch: dict[str, list]) -> dict[str, list]:
        pivots = _translate(batch["original"], pivot, to_pivot)
        return {"pivot_text": pivots, "instruction": _translate(pivots, source_language, from_pivot)}

    rows = checkpointed_map(
        base, _there_and_back, checkpointer, name, batch_size=1024, desc="Back-translating"
    )
    originals, results = list(rows["original"]), list(rows["instruction"])
    sims = (embed(originals, embedding_model) * embed([r or " " for r in results], embedding_model)).sum(
        axis=1
    )
    params = json.dumps(
        {"translate": sampling.to_dict(), "pivot": pivot, "band": [min_similarity, max_similarity]}
    )

    def _finish(row: dict[str, Any], i: int) -> dict[str, Any]:
        similarity = float(sims[i])
        if not row["instruction"] or not row["pivot_text"]:
            reasons = ["empty"]
        elif (
            normalized_words(row["instruction"]) == normalized_words(row["original"])
            or similarity >= max_similarity
        ):
            reasons = ["unchanged"]
        elif similarity < min_similarity:
            reasons = ["meaning_drift"]
        else:
            reasons = hygiene_reasons(row["instruction"], field="instruction")
        return {
            "pivot_language": pivot,
            "strategy": "back_translation",
            "source": "back_translation",
            "model": f"{to_pivot_model or engine.model_id} -> {from_pivot_model or engine.model_id}",
            "generation_params": params,
            "filter_reasons": reasons,
            "scores": {"embedding_similarity": similarity},
        }

    rows = add_messages(rows.map(_finish, with_indices=True, keep_in_memory=True))
    kept, rejected = split_filtered(rows)
    return backtranslate_result(
        kept,
        rejected,
        dataset=dataset,
        engine=teacher,
        pivot=pivot,
        min_similarity=min_similarity,
        max_similarity=max_similarity,
        source=source,
        engine_for_config=given_engine,
    )
