"""What a run shows while it works: hf-synth's own generation bar, and the bars of the libraries under it.

hf-synth shows one bar per engine call (:class:`hf_synth.engine.protocol.GenerationProgress`: prompts done
and generated tok/s) on a terminal, and progress lines in the log elsewhere. It is switched off by
:func:`disable_progress_bars` or ``HF_SYNTH_DISABLE_PROGRESS_BARS=1``, never by another library's switch
(transformers' ``disable_progress_bar()`` turns huggingface_hub's bars off too, which is how the command
line once lost hf-synth's bar).

The bars of datasets (one per ``map``/``filter``/save inside every step), transformers ("Loading weights")
and huggingface_hub are off in the command line unless ``--verbose`` (:func:`quiet_libraries`); in Python
the pipelines' ``run`` turn datasets' bars off while they run (:func:`datasets_bars_off`) unless
``HF_DATASETS_DISABLE_PROGRESS_BARS=0`` asks for them. Nothing here imports a library that is not already
imported.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

F = TypeVar("F", bound=Callable)

#: hf-synth's own bars: ``None`` lets ``HF_SYNTH_DISABLE_PROGRESS_BARS`` decide.
_enabled: bool | None = None


def _env_flag(name: str) -> bool | None:
    value = os.environ.get(name, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return None


def progress_bars_enabled() -> bool:
    """Whether hf-synth's generation bar (or its log lines) shows."""
    if _enabled is not None:
        return _enabled
    return not _env_flag("HF_SYNTH_DISABLE_PROGRESS_BARS")


def disable_progress_bars() -> None:
    """Turn hf-synth's generation bar off (for this process)."""
    global _enabled
    _enabled = False


def enable_progress_bars() -> None:
    """Turn hf-synth's generation bar back on (the default)."""
    global _enabled
    _enabled = True


def quiet_libraries() -> None:
    """The bars of datasets, transformers and huggingface_hub off, and the info logs of datasets and
    transformers: a command shows hf-synth's own bar and log. Sets the libraries' environment variables
    when they are not imported yet (so this imports none of them), calls their switches when they are."""
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("DATASETS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' bars follow huggingface_hub's
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if "datasets" in sys.modules:
        import datasets

        datasets.disable_progress_bars()
        datasets.logging.set_verbosity_error()
    if "transformers" in sys.modules:
        import transformers

        transformers.utils.logging.disable_progress_bar()  # also huggingface_hub's
        transformers.logging.set_verbosity_error()
    elif "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars as hub_bars_off

        hub_bars_off()


@contextmanager
def datasets_bars_off_while() -> Iterator[None]:
    """datasets' per-operation bars off inside the block, as they were after it; left on when the user
    asked for them with ``HF_DATASETS_DISABLE_PROGRESS_BARS=0``."""
    import datasets

    if _env_flag("HF_DATASETS_DISABLE_PROGRESS_BARS") is False or datasets.are_progress_bars_disabled():
        yield
        return
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        datasets.enable_progress_bars()


def datasets_bars_off(function: F) -> F:
    """Decorator: ``function`` runs with datasets' bars off (see :func:`datasets_bars_off_while`), so a
    pipeline shows hf-synth's one bar per generation step instead of one bar per internal ``map``."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with datasets_bars_off_while():
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
