"""Prompt templates are data: Jinja files in this folder, rendered into chat messages.

A template named ``NAME`` is a set of files ``NAME.system.jinja`` (optional), ``NAME.user.jinja`` and
``NAME.assistant.jinja`` (optional: a prefill the model continues). User text is only ever passed in as
template *variables*, never spliced into template source, so braces, ``{{ }}`` or ``{% %}`` inside an
instruction are printed as they are and never evaluated. Templates run in Jinja's sandbox.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

TEMPLATE_DIR = Path(__file__).parent
_ROLES = ("system", "user", "assistant")


@lru_cache(maxsize=8)
def _environment(folder: str) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=FileSystemLoader(folder),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def template_names(folder: str | Path = TEMPLATE_DIR) -> list[str]:
    """Names of all templates in ``folder`` (e.g. ``"self_instruct/generate_instructions"``)."""
    folder = Path(folder)
    names = set()
    for path in folder.rglob("*.user.jinja"):
        names.add(path.relative_to(folder).as_posix()[: -len(".user.jinja")])
    return sorted(names)


def render_messages(name: str, folder: str | Path = TEMPLATE_DIR, **variables) -> list[dict[str, str]]:
    """Render template ``name`` into chat messages (system?, user, assistant prefill?)."""
    folder = Path(folder)
    if not (folder / f"{name}.user.jinja").is_file():
        raise FileNotFoundError(
            f"No prompt template {name!r} in {folder}; available: {', '.join(template_names(folder))}"
        )
    env = _environment(str(folder))
    messages = []
    for role in _ROLES:
        file = f"{name}.{role}.jinja"
        if (folder / file).is_file():
            content = env.get_template(file).render(**variables)
            messages.append({"role": role, "content": content})
    return messages


__all__ = ["TEMPLATE_DIR", "render_messages", "template_names"]
