"""Packages whose public names load on first access (the pattern of huggingface_hub's ``__init__``).

Every package of hf-synth lists its public names once, by submodule, and calls :func:`attach`; the static
imports under ``TYPE_CHECKING`` repeat them for type checkers. ``import hf_synth`` then costs
milliseconds, and torch, datasets, numba or nltk load only when a name that needs them is used.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from typing import Any


def attach(
    package: str, submod_attrs: dict[str, list[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for ``package`` (its ``__name__``).

    A public name may not also be a submodule's name: importing that submodule would make the package
    attribute the module instead of the name (an ``ImportError`` says which to rename).
    """
    owner = {name: module for module, names in submod_attrs.items() for name in names}
    clashes = sorted(name for name in owner if importlib.util.find_spec(f"{package}.{name}") is not None)
    if clashes:
        raise ImportError(
            f"{package}: public names {clashes} are also submodule names; rename the submodules"
        )
    names = sorted(owner)

    def __getattr__(name: str) -> Any:
        module = owner.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(importlib.import_module(package), name, value)  # later accesses skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(importlib.import_module(package)), *names})

    return __getattr__, __dir__, names
