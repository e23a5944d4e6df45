"""Build config dataclasses from YAML/dicts, with errors that list the valid keys."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "config") -> T:
    """Instantiate dataclass ``cls`` from ``data``; nested dataclass fields accept dicts, which change only
    the keys they name (``instruction_sampling: {max_new_tokens: 64}`` keeps that field's own default
    temperature and top_p, not the nested class's).

    Unknown keys raise ``ValueError`` naming them and the valid keys.
    """
    data = dict(data or {})
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(
            f"Unknown key(s) {', '.join(unknown)} in {where}; valid keys: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        hint = hints.get(name)
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            default = _default_of(fields[name])
            if dataclasses.is_dataclass(default):
                value = {**dataclasses.asdict(default), **value}
            value = from_dict(hint, value, f"{where}.{name}")
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise ValueError(f"Invalid {where}: {err}") from err


def _default_of(field: dataclasses.Field) -> Any:
    """A dataclass field's default value (its factory called), or ``None`` when it has none."""
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a dict (empty file = empty dict)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" line {where.line + 1}" if where is not None else ""
        raise ValueError(f"{path}{line} is not valid YAML: {getattr(err, 'problem', err)}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a mapping with sections such as 'engine:' and 'self_instruct:'")
    return data


def to_dict(config: Any) -> dict[str, Any]:
    """A dataclass config as plain data (for YAML dumps and provenance)."""
    return dataclasses.asdict(config)


# ---------------------------------------------------------------------------- command-line options
#: Metadata key of a config field that is also a command-line option.
CLI = "cli"


def option(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING, choices=None):
    """A config field that is also a command-line option, ``--field-name``. Its help is the field's
    entry in the class docstring's ``Args:`` (written once, read by the CLI); ``choices`` restrict it."""
    return dataclasses.field(
        default=default, default_factory=default_factory, metadata={CLI: True, "choices": choices}
    )


_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")
_ARG = re.compile(r"^(\s+)([a-z_][a-z0-9_]*(?:\s*/\s*[a-z_][a-z0-9_]*)*):\s*(.*)$")


def field_docs(cls: type) -> dict[str, str]:
    """The ``Args:`` entries of ``cls``'s docstring by field name (``a / b: text`` documents both)."""
    docs: dict[str, str] = {}
    lines = (cls.__doc__ or "").splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Args:") + 1
    except StopIteration:
        return docs
    names: list[str] = []
    indent = None
    for line in lines[start:]:
        match = _ARG.match(line)
        if match and (indent is None or len(match.group(1)) == indent):
            indent = len(match.group(1))
            names = [n.strip() for n in match.group(2).split("/")]
            for name in names:
                docs[name] = match.group(3).strip()
        elif line.strip() and names and indent is not None and len(line) - len(line.lstrip()) > indent:
            for name in names:
                docs[name] += " " + line.strip()
        elif line.strip():
            break  # the next section
    return {k: _ROLE.sub(r"\1", v).replace("``", "") for k, v in docs.items()}


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def add_options(parser, cls: type) -> None:
    """Add every :func:`option` field of config dataclass ``cls`` to an argparse parser or group. Options
    default to ``None`` (not given), so YAML values and the dataclass defaults stay in force."""
    import argparse

    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    for f in dataclasses.fields(cls):
        if not f.metadata.get(CLI):
            continue
        kind = hints[f.name]
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if kind not in (bool, int, float, str) and len(args) == 1 and typing.get_origin(kind) is not list:
            kind = args[0]  # X | None
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        shown = (",".join(default) or "none") if isinstance(default, list) else default
        text = f"{docs.get(f.name, '')} (default: {shown})".replace("%", "%%")
        flag = "--" + f.name.replace("_", "-")
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif typing.get_origin(kind) is list:
            parser.add_argument(flag, type=_comma_list, default=None, metavar="A,B", help=text)
        else:
            parser.add_argument(flag, type=kind, default=None, choices=f.metadata.get("choices"), help=text)


def given_options(args: Any, cls: type) -> dict[str, Any]:
    """The :func:`option` fields of ``cls`` given on the command line (argparse namespace ``args``)."""
    return {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(cls)
        if f.metadata.get(CLI) and getattr(args, f.name, None) is not None
    }
