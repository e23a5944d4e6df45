"""One place per option: config fields marked with option() are the CLI flags, with the help written once
in the config docstring and the default taken from the dataclass."""

import argparse
import dataclasses
import re
import typing

import pytest

from hf_synth.augment.augment_config import NegativeConfig, ParaphraseConfig
from hf_synth.cli import build_parser
from hf_synth.configuration import CLI, add_options, field_docs, given_options, option
from hf_synth.engine.engine_config import EngineConfig
from hf_synth.evol_instruct.evol_instruct_config import EvolInstructConfig
from hf_synth.self_instruct.self_instruct_config import SelfInstructConfig

CONFIGS = [SelfInstructConfig, EvolInstructConfig, ParaphraseConfig, NegativeConfig, EngineConfig]


@dataclasses.dataclass
class _Toy:
    """A toy.

    Args:
        count: How many, see :func:`~pkg.thing` and ``code``.
        ratio / other_ratio: Two fields, one text
            that goes on.
        names: A list.
        flag: A switch.
        mode: One of two.

    Returns:
        nothing: not a field.
    """

    count: int = option(3)
    ratio: float | None = option(None)
    other_ratio: float = 0.5
    names: list[str] = option(default_factory=lambda: ["a", "b"])
    flag: bool = option(False)
    mode: str = option("x", choices=["x", "y"])


def test_field_docs_reads_args_with_shared_and_continued_entries():
    docs = field_docs(_Toy)
    assert docs["count"] == "How many, see pkg.thing and code."
    assert docs["ratio"] == docs["other_ratio"] == "Two fields, one text that goes on."
    assert "nothing" not in docs  # the Returns: section is not an argument


def test_add_options_types_defaults_and_not_given():
    parser = argparse.ArgumentParser()
    add_options(parser, _Toy)
    args = parser.parse_args([])
    assert given_options(args, _Toy) == {}  # nothing given: YAML and dataclass defaults stay in force
    args = parser.parse_args(["--count", "7", "--ratio", "0.25", "--names", "p, q,", "--flag", "--mode", "y"])
    assert given_options(args, _Toy) == {
        "count": 7,
        "ratio": 0.25,
        "names": ["p", "q"],
        "flag": True,
        "mode": "y",
    }
    assert given_options(parser.parse_args(["--no-flag"]), _Toy) == {"flag": False}
    with pytest.raises(SystemExit):
        parser.parse_args(["--mode", "z"])
    assert "(default: a,b)" in parser.format_help()
    assert "--other-ratio" not in parser.format_help()  # not an option() field


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_option_is_documented_once_in_its_config(cls):
    docs = field_docs(cls)
    options = [f.name for f in dataclasses.fields(cls) if f.metadata.get(CLI)]
    assert options, f"{cls.__name__} has no command-line options"
    assert not [name for name in options if not docs.get(name)], "options without a docstring entry"


@pytest.mark.parametrize(
    "command, cls",
    [
        (["self-instruct", "--output", "o"], SelfInstructConfig),
        (["evol-instruct", "--input", "i", "--output", "o"], EvolInstructConfig),
        (["paraphrase", "--input", "i", "--output", "o"], ParaphraseConfig),
        (["negatives", "--input", "i", "--output", "o"], NegativeConfig),
        (["self-instruct", "--output", "o"], EngineConfig),
    ],
)
def test_cli_flags_are_the_config_options(command, cls):
    parser = build_parser()
    assert given_options(parser.parse_args(command), cls) == {}
    given = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.metadata.get(CLI):
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        choices = f.metadata.get("choices")
        if choices:
            value = [c for c in choices if c != default][0]
        elif isinstance(default, bool):
            value = not default
        elif isinstance(default, list):
            value = ["alpha", "beta"]
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            value = type(default)(default + 1)
        elif default is None and int in typing.get_args(hints[f.name]):
            value = 5
        else:
            value = "somevalue"
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            command = [*command, flag if value else "--no-" + flag[2:]]
        else:
            command = [*command, flag, ",".join(value) if isinstance(value, list) else str(value)]
        given[f.name] = value
    assert given_options(parser.parse_args(command), cls) == given


def _flags(parser) -> dict[str, set[str]]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {
        name: {flag for action in command._actions for flag in action.option_strings}
        for name, command in sub.choices.items()
    }


#: Flags that make sense for a command, with the commands they do not apply to and why.
SHARED_FLAGS = {
    "--input": {"slots": "makes rows from a template", "blend": "takes several --source"},
    "--output": {"show": "prints rows", "push": "writes REPO_ID or --local-dir"},
    "--config": {"report": "has no model or thresholds to configure", "push": "", "show": "", "blend": ""},
    "--max-new-tokens": {
        "filter": "judge limits live in the filter YAML",
        "report": "",
        "push": "",
        "show": "",
        "blend": "generates nothing",
        "review": "",
    },
    "--resume": {
        "review": "reopening a review continues it by itself",
        "report": "writes one file",
        "push": "",
        "show": "",
        "blend": "generates nothing",
    },
    "--overwrite": {"report": "", "push": "", "show": "", "blend": "", "review": "--restart"},
    "--model": {
        "filter": "models are named per filter in the YAML",
        "report": "--embedding-model",
        "push": "",
        "show": "",
        "blend": "",
        "review": "no model: a person decides",
    },
}


def test_every_subcommand_has_the_shared_flags():
    flags = _flags(build_parser())
    missing = [
        f"{command} {flag}"
        for flag, exceptions in SHARED_FLAGS.items()
        for command, have in flags.items()
        if flag not in have and command not in exceptions
    ]
    assert not missing, "add these flags (or list the command as an exception with its reason)"
    needless = [
        f"{command} {flag}"
        for flag, exceptions in SHARED_FLAGS.items()
        for command in exceptions
        if command in flags and flag in flags[command]
    ]
    assert not needless, "these commands have the flag now: remove them from the exceptions"


def _help_without_default(text: str | None) -> str:
    return re.sub(r"\s*\(default:? [^)]*\)$", "", text or "").strip()


def _parsers(parser, name="hf-synth"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {command}")


def test_every_option_of_every_command_has_its_own_help():
    undocumented, shared = [], []
    for name, parser in _parsers(build_parser()):
        seen: dict[str, str] = {}
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            flag = action.option_strings[0] if action.option_strings else action.dest
            text = _help_without_default(action.help)
            if not text:
                undocumented.append(f"{name} {flag}")
            elif text in seen:
                shared.append(f"{name}: {seen[text]} and {flag} both say {text[:60]!r}")
            seen.setdefault(text, flag)
    assert not undocumented, f"options without help: {undocumented}"
    assert not shared, f"options sharing one help text: {shared}"
