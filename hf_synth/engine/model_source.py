"""Where a model comes from, checked before anything loads (no torch here: filter specs and the CLI use
it to refuse a model that cannot be had in under a second, with its name and the fix)."""

from __future__ import annotations

from pathlib import Path

#: Parameters of filter and step specs that name a model to load.
MODEL_PARAMETERS = ("model", "student_model", "teacher_model", "judge_model", "response_model")


def looks_like_path(name: str) -> bool:
    """``name`` is meant as a folder (``./m``, ``/m``, ``~/m``, ``a/b/c``), not a Hub id (``org/name``)."""
    return name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1


def check_model_source(model: str, revision: str | None = None) -> None:
    """Refuse ``model`` early when it cannot load: a folder that does not exist, or a Hub id that is not in
    the local Hub cache while the Hub is offline (``HF_HUB_OFFLINE=1``). Raises ``FileNotFoundError``
    naming the model and what to do; a Hub id with the Hub reachable is left to the loader."""
    if Path(model).expanduser().exists():
        return
    if looks_like_path(model):
        raise FileNotFoundError(
            f"Model folder {model!r} does not exist; pass an existing folder or a Hub id "
            "such as HuggingFaceTB/SmolLM2-360M-Instruct."
        )
    from huggingface_hub import constants, try_to_load_from_cache

    if not constants.HF_HUB_OFFLINE:
        return
    if not isinstance(try_to_load_from_cache(model, "config.json", revision=revision), str):
        raise FileNotFoundError(
            f"Model {model!r} is not a local folder and not in the Hub cache, and the Hub is offline "
            f"(HF_HUB_OFFLINE=1): download it first (`hf download {model}`), pass a local folder, or leave "
            "the model out to use the embedded default."
        )
