"""Every third-party package hf_synth imports is one pyproject.toml declares, not one that happens to be
installed because a dependency needs it (a release of that dependency could drop it). Read with ``ast``
(imports inside functions count too) and the installed distributions' metadata; nothing is imported."""

from __future__ import annotations

import ast
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parent.parent
#: Optional imports, each behind an ``except ImportError`` that says what to install: not dependencies.
OPTIONAL = {
    "vllm": "the vllm backend, installed in its own environment (constraints-vllm.txt)",
    "spacy": "the report's verb-object parse; without it an approximation, and the report says so",
    "httpx": "server.py's fallback where an environment has httpx instead of httpx2",
}


def _normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _imported_packages() -> dict[str, set[str]]:
    """``{top-level module: {files importing it}}`` for every import in hf_synth outside the standard
    library and hf_synth itself."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "hf_synth").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "hf_synth":
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = [req for group in project.get("optional-dependencies", {}).values() for req in group]
    return {_normal(Requirement(req).name) for req in [*project["dependencies"], *extras]}


def test_every_imported_third_party_package_is_declared_in_pyproject():
    declared = _declared()
    distributions = packages_distributions()
    undeclared = {}
    for module, files in _imported_packages().items():
        if module in OPTIONAL:
            continue
        names = {_normal(d) for d in distributions.get(module, [])}
        if not names & declared:
            undeclared[module] = (sorted(names) or ["not installed"], sorted(files)[:3])
    assert not undeclared, (
        "imported but not declared in pyproject.toml [project] dependencies (module: distributions, files): "
        f"{undeclared}; declare each, or list an optional import in OPTIONAL with the reason"
    )


def test_the_optional_imports_are_still_imported():
    """An entry of OPTIONAL that nothing imports any more is stale."""
    assert set(OPTIONAL) <= set(_imported_packages())
