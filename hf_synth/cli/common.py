"""Helpers shared by the subcommands: config sections, overrides, printing."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from ..configuration import from_dict, given_options, load_yaml
from ..engine import EngineConfig

logger = logging.getLogger("hf_synth")


def check_resume(args: argparse.Namespace) -> None:
    """--resume needs checkpoints; --resume and --overwrite contradict each other. Without either, a run
    with the same configuration continues from its checkpoints and a different one is refused."""
    if args.resume and args.overwrite:
        raise ValueError("--resume and --overwrite contradict each other; pass one of them.")
    from ..run_folder import RunFolder

    fingerprint = RunFolder(args.output).checkpoints_dir / "fingerprint.json"
    if args.resume and not fingerprint.is_file():
        raise FileNotFoundError(f"Nothing to resume in {args.output} (no checkpoints); run without --resume.")


def checkpoint_args(args: argparse.Namespace) -> dict[str, Any]:
    """``checkpoint_dir`` (the run folder's ``checkpoints/``) and ``overwrite`` for a step, from --output and
    --overwrite."""
    from ..run_folder import RunFolder

    return {"checkpoint_dir": RunFolder(args.output).checkpoints_dir, "overwrite": args.overwrite}


def check_output(args: argparse.Namespace) -> None:
    """--output must name a folder (existing or to be created) that can be written; checked before
    anything loads, and nothing is created by a refused run."""
    import os

    output = Path(args.output).expanduser()
    if output.exists() and not output.is_dir():
        raise ValueError(f"--output {args.output} is a file; name a folder (it is created if missing).")
    parent = next((p for p in [output, *output.parents] if p.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"--output {args.output}: cannot write in {parent}; choose a writable folder.")


def check_input_files(args: argparse.Namespace, names: tuple[str, ...]) -> None:
    """Refuse a missing, empty, non-UTF-8 or broken JSON(L) input file named by the arguments ``names`` (a
    command's ``inputs``) at once, before torch, nltk or numba are imported (the loader would give the same
    message seconds later). Self-instruct and evol-instruct check theirs with the instruction column, once
    their config is read; blend checks its --source paths itself."""
    from ..input_files import check_input

    for name in names:
        check_input(getattr(args, name, None))


def parse_config(
    args: argparse.Namespace,
    section: str | None = None,
    cls: type | None = None,
    *,
    sampling: tuple[str, ...] = (),
    extra: dict[str, Any] | None = None,
    engine: bool = True,
) -> tuple[EngineConfig | None, Any]:
    """The one place a command's YAML (--config) and its flags merge, as TRL's
    ``TrlParser.parse_args_and_config``: the YAML may hold ``engine:`` (when ``engine``) and ``section``
    (anything else is an error naming the valid sections); the option flags of :class:`EngineConfig` and of
    ``cls`` override their sections; ``extra`` (values a command derives from its own flags) goes on top;
    --max-new-tokens sets ``max_new_tokens`` of every sampling field named in ``sampling`` (dotted for a
    nested one: ``generation.instance_sampling``). Returns ``(EngineConfig or None, cls instance or
    None)``."""
    file_config = load_yaml(args.config) if getattr(args, "config", None) else {}
    valid = (["engine"] if engine else []) + ([section] if section else [])
    unknown = sorted(set(file_config) - set(valid))
    if unknown:
        raise ValueError(
            f"Unknown section(s) {', '.join(unknown)} in {args.config}; valid: {', '.join(valid)}"
        )
    engine_config = None
    if engine:
        engine_data = {**(file_config.get("engine") or {}), **given_options(args, EngineConfig)}
        engine_config = from_dict(EngineConfig, engine_data, "engine")
    if cls is None:
        return engine_config, None
    data = dict(file_config.get(section) or {})
    data.update(given_options(args, cls))
    data.update(extra or {})
    tokens = getattr(args, "max_new_tokens", None)
    if tokens is not None:  # one limit for every generation of the step
        for path in sampling:
            *parents, leaf = path.split(".")
            target = data
            for name in parents:
                target[name] = dict(target.get(name) or {})
                target = target[name]
            target[leaf] = {**(target.get(leaf) or {}), "max_new_tokens": tokens}
    return engine_config, from_dict(cls, data, section)


def print_summary_counts(counts: dict[str, int]) -> None:
    for reason, count in counts.items():
        print(f"    {count:5d}  {reason}")


def print_rows(rows: list[dict], n: int) -> None:
    for row in rows[:n]:
        print("-" * 72)
        details = [
            f"round {row['round']}" if row.get("round") is not None else "",
            row.get("generation_order") or row.get("strategy") or "",
        ]
        print(f"[{row.get('id')}] {' '.join(d for d in details if d)}".rstrip())
        print(f"Instruction: {row['instruction']}")
        if row.get("input"):
            print(f"Input: {row['input']}")
        print(f"Output: {row['output']}")
    if rows[:n]:
        print("-" * 72)


def parse_weights(text: str) -> dict[str, float]:
    weights = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            weights[name.strip()] = float(value) if sep else 1.0
        except ValueError as err:
            raise ValueError(
                f"--operations: {part!r} is not NAME=NUMBER (e.g. deepening=2,breadth=1)"
            ) from err
    return weights


def parse_pairs(values: list[str] | None, option: str, cast=str) -> dict[str, Any]:
    out = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"{option} {item!r} is not NAME=VALUE")
        try:
            out[name] = cast(value)
        except ValueError as err:
            raise ValueError(f"{option} {item!r}: {value!r} is not a number") from err
    return out
