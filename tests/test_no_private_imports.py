"""hf_synth uses the public API of the packages it builds on: no module imports or reaches into a private
(leading underscore, not dunder) name of huggingface_hub, transformers, datasets, trl or torch, which a
release of theirs can rename without notice (distilabel's users hit exactly that with huggingface_hub).

The check reads every module of ``hf_synth/`` with ``ast``: imports (``import torch._dynamo``,
``from huggingface_hub.utils._http import x``, ``from transformers import _x``), attribute chains on a
name bound to one of those packages or to something imported from them (``torch._C``, ``F._pad`` after
``import torch.nn.functional as F``, ``AutoModel._from_config``) and ``getattr(torch, "_x")`` with a literal.
One narrow allowance: names under ``torch.ops.<namespace>.`` are operator names of torch's dispatcher
registry (``torch.ops.aten._scaled_dot_product_flash_attention_for_cpu``), the documented way of calling
an operator, not private Python attributes.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGES = ("huggingface_hub", "transformers", "datasets", "trl", "torch")
ROOT = Path(__file__).resolve().parent.parent / "hf_synth"


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _of_package(module: str | None) -> bool:
    return bool(module) and module.split(".")[0] in PACKAGES


def _chain(node: ast.AST) -> list[str] | None:
    """``a.b.c`` as ["a", "b", "c"], or None when the chain does not start at a plain name."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]


def private_uses(source: str, filename: str = "<source>") -> list[str]:
    """Every private name of PACKAGES that ``source`` imports or reaches, as "line: what"."""
    tree = ast.parse(source, filename)
    found: list[str] = []
    bound: dict[str, str] = {}  # local name -> the dotted name of PACKAGES it stands for
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not _of_package(alias.name):
                    continue
                if any(_private(part) for part in alias.name.split(".")):
                    found.append(f"{node.lineno}: import {alias.name}")
                if alias.asname:
                    bound[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    bound[top] = top
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _of_package(node.module):
            if any(_private(part) for part in node.module.split(".")):
                found.append(f"{node.lineno}: from {node.module} import ...")
            for alias in node.names:
                if _private(alias.name):
                    found.append(f"{node.lineno}: from {node.module} import {alias.name}")
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            parts = _chain(node)
            if not parts or parts[0] not in bound:
                continue
            dotted = bound[parts[0]].split(".") + parts[1:]
            if dotted[:2] == ["torch", "ops"] and len(dotted) > 3:
                continue  # an operator of torch's dispatcher registry (see the module's docstring)
            # only the last attribute: the enclosing chains are their own Attribute nodes
            if _private(parts[-1]):
                found.append(f"{node.lineno}: {'.'.join(parts)}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr", "setattr")
            and len(node.args) >= 2
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id in bound
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
        ):
            found.append(f"{node.lineno}: {node.func.id}({node.args[0].id}, {node.args[1].value!r})")
    return found


MODULES = sorted(ROOT.rglob("*.py"))


def test_every_module_is_read():
    assert len(MODULES) > 50 and ROOT / "engine" / "server.py" in MODULES


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_names_of_other_packages(path):
    uses = private_uses(path.read_text(), str(path))
    assert not uses, f"{path.relative_to(ROOT.parent)} uses private names of other packages: {uses}"


@pytest.mark.parametrize(
    "planted",
    [
        "from huggingface_hub.inference._generated import _async_client",
        "from huggingface_hub.utils._http import async_hf_response_event_hook",
        "import torch._dynamo",
        "import transformers.models._x as m",
        "from datasets import _private_thing",
        "import trl\ntrl._hidden()",
        "import torch\nx = torch._C._get_tracing_state()",
        "import torch.nn.functional as F\nF._pad(1)",
        "from huggingface_hub import AsyncInferenceClient\nAsyncInferenceClient._inner_post",
        "def f(client):\n    import huggingface_hub as hub\n    return getattr(hub, '_CACHED')",
    ],
)
def test_a_planted_private_name_is_caught(planted):
    assert private_uses(planted), planted


@pytest.mark.parametrize(
    "fine",
    [
        "import torch\ntorch.__version__",
        "import torch\ntorch.ops.aten._scaled_dot_product_flash_attention_for_cpu(1)",
        "import torch\nx = torch.ones(1)\nx._version",  # an object's attribute, not the package's
        "from huggingface_hub import AsyncInferenceClient, get_async_session",
        "import numpy as np\nnp._x",  # not one of the packages checked
        "from ._lazy import attach",  # hf_synth's own private modules are its business
    ],
)
def test_public_names_pass(fine):
    assert private_uses(fine) == []
