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
    fingerprint = Path(args.output) / "checkpoints" / "fingerprint.json"
    if args.resume and not fingerprint.is_file():
        raise FileNotFoundError(f"Nothing to resume in {args.output} (no checkpoints); run without --resume.")


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


#: The dataset inputs of each command, checked by :func:`check_input_files` before anything heavy loads
#: (self-instruct and evol-instruct check theirs with the instruction column, once their config is read).
DATASET_INPUTS = {
    "refine": ("seeds", "eval"),
    "filter": ("input",),
    "report": ("path", "input", "seeds"),
    "paraphrase": ("input",),
    "negatives": ("input",),
    "backtranslate": ("input",),
    "generate": ("input",),
}


def check_input_files(args: argparse.Namespace) -> None:
    """Refuse a missing, empty, non-UTF-8 or broken JSON(L) input file of the command at once, before
    torch, nltk or numba are imported (the loader would give the same message seconds later)."""
    from ..input_files import check_input

    for name in DATASET_INPUTS.get(args.command, ()):
        check_input(getattr(args, name, None))
    if args.command == "blend":
        for item in args.source or []:
            name, sep, path = item.partition("=")
            if sep and name:  # a malformed pair is refused by the command itself
                check_input(path)


def check_checkpoints(args: argparse.Namespace, fingerprint: dict[str, Any]) -> None:
    """Refuse, before any model loads, an --output whose checkpoints belong to a run of another
    configuration (unless --overwrite); the same check binding the folder does later."""
    if args.overwrite:
        return
    if any(isinstance(m, str) and not m for m in _model_ids(fingerprint)):
        return  # a server that names its model when asked: checked when the run binds the folder
    from ..checkpoint import Checkpointer

    Checkpointer(Path(args.output) / "checkpoints").check(fingerprint)


def _model_ids(fingerprint: dict[str, Any]) -> list:
    return [fingerprint.get("model"), *(fingerprint.get("models") or [])]


def output_checkpointer(args: argparse.Namespace, fingerprint: dict[str, Any]):
    """The checkpoint folder under --output, tied to ``fingerprint``."""
    from ..checkpoint import Checkpointer

    checkpointer = Checkpointer(Path(args.output) / "checkpoints")
    checkpointer.bind(fingerprint, overwrite=args.overwrite)
    return checkpointer


def load_sections(args: argparse.Namespace, section: str) -> tuple[EngineConfig, dict[str, Any]]:
    """The engine config and the raw ``section`` dict from --config, with engine flags applied."""
    file_config = load_yaml(args.config) if args.config else {}
    unknown = sorted(set(file_config) - {"engine", section})
    if unknown:
        raise ValueError(
            f"Unknown section(s) {', '.join(unknown)} in {args.config}; valid: engine, {section}"
        )
    engine_data = {
        **file_config.get("engine", {}),
        **given_options(args, EngineConfig),
    }
    return from_dict(EngineConfig, engine_data, "engine"), dict(file_config.get(section, {}))


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


def card_extras(dataset, source: str | None) -> dict[str, Any]:
    """Skill coverage (best effort: a missing embedding model only costs the card that section) and the Hub
    id the data came from, for dataset cards."""
    from pathlib import Path as _Path

    extras: dict[str, Any] = {"source_datasets": [] if source is None or _Path(source).exists() else [source]}
    try:
        from ..curation import classify_skills, coverage_report, skill_labeller

        extras["coverage"] = (
            coverage_report(classify_skills(dataset), labeller=skill_labeller()) if len(dataset) else None
        )
    except Exception as err:  # noqa: BLE001 - the card is still useful without this section
        logger.warning("Skill coverage left out of the card: %s", err)
    return extras


def run_diversity(dataset, seeds=None) -> dict[str, Any] | None:
    """The diversity figures of a run's kept instructions for summary.json and the card (best effort: when
    the embedding model cannot be loaded only the embedding figures are left out, with a warning)."""
    from ..curation.diversity import dataset_diversity

    seeds = [t for t in seeds if t] if seeds is not None else None
    try:
        return dataset_diversity(dataset, seeds=seeds)
    except Exception as err:  # noqa: BLE001 - the other figures do not need embeddings
        logger.warning("Embedding figures left out of the diversity numbers: %s", err)
        return dataset_diversity(dataset, seeds=seeds, embeddings=False)


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


def engine_config_from_args(args: argparse.Namespace) -> EngineConfig:
    """The engine configuration: the ``engine:`` section of --config, then the --model/--batch-size/
    --device/--dtype/--backend flags on top."""
    file_config = load_yaml(args.config) if getattr(args, "config", None) else {}
    return from_dict(
        EngineConfig, {**file_config.get("engine", {}), **given_options(args, EngineConfig)}, "engine"
    )


def step_config(args: argparse.Namespace, cls: type, section: str, sampling_field: str = "sampling"):
    """``cls`` from the --config YAML's ``section`` (unknown sections and keys are errors), the option
    flags of ``cls`` and --max-new-tokens (into ``sampling_field``) on top."""
    _, data = load_sections(args, section)
    data.update(given_options(args, cls))
    if getattr(args, "max_new_tokens", None) is not None:
        data[sampling_field] = {**data.get(sampling_field, {}), "max_new_tokens": args.max_new_tokens}
    return from_dict(cls, data, section)


def engine_only_config(args: argparse.Namespace) -> None:
    """Commands whose --config holds only an ``engine:`` section: refuse anything else early."""
    if getattr(args, "config", None):
        unknown = sorted(set(load_yaml(args.config)) - {"engine"})
        if unknown:
            raise ValueError(f"Unknown section(s) {', '.join(unknown)} in {args.config}; valid: engine")


def engine_from_args(args: argparse.Namespace):
    """The generation engine named by the engine flags (see :func:`engine_config_from_args`)."""
    return load_engine(args, engine_config_from_args(args))


def load_engine(args: argparse.Namespace, config: EngineConfig):
    """:func:`hf_synth.engine.load_engine` (transformers' weight-loading bars are off unless --verbose,
    from :func:`hf_synth.progress.quiet_libraries` in ``main``; hf-synth's own generation bar stays)."""
    from ..engine import load_engine as _load

    return _load(config)


def write_step_card(
    args: argparse.Namespace,
    dataset,
    *,
    method: str,
    tags: list[str],
    steps: list[str],
    rejected=None,
    engines: list[dict[str, Any]] | tuple = (),
    settings: dict[str, Any] | None = None,
    prompt_templates: list[str] | tuple = (),
    diversity: dict[str, Any] | None = None,
) -> Path:
    """Write the dataset card of a step's output to ``--output``/README.md: what the step did, its settings,
    drops per reason (from ``rejected``'s ``filter_reasons``), and the input run's own history."""
    from collections import Counter

    from ..cards import step_card

    dropped: Counter = Counter()
    if rejected is not None and "filter_reasons" in rejected.column_names:
        from ..filters import reason_key

        dropped.update(reason_key(r) for row in rejected["filter_reasons"] for r in row)
    card = step_card(
        dataset,
        method=method,
        tags=tags,
        steps=steps,
        input_source=getattr(args, "input", None),
        model=engines[0]["model"] if engines else None,
        engines=list(engines),
        rejected=len(rejected) if rejected is not None else 0,
        dropped=dict(dropped),
        settings=settings,
        prompt_templates=list(prompt_templates),
        diversity=diversity,
    )
    path = Path(args.output) / "README.md"
    card.save(str(path))
    return path
