"""The command line's layout (issue 27, "the CLI only parses"): each subcommand's parser and run function
live together in its command module, and ``hf_synth/cli/__init__.py`` holds only the top-level parser, the
registration (``COMMANDS``) and ``main()``, so a new subcommand is one :class:`Command` in one module plus
one entry in that list."""

from __future__ import annotations

import argparse
import ast
import importlib
from pathlib import Path

import hf_synth.cli as cli

CLI_DIR = Path(cli.__file__).parent
#: The CLI's modules that serve every command and so must name none of them.
SHARED = ("__init__.py", "common.py", "options.py")


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _calls(path: Path, name: str) -> int:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return sum(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == name
        for node in ast.walk(tree)
    )


def test_the_package_init_builds_no_subcommand_parser_itself():
    init = CLI_DIR / "__init__.py"
    assert _calls(init, "add_parser") == 0, "subcommand parsers belong in their command modules"
    # --log-level and --verbose: the top-level parser's own options, nothing of a subcommand
    assert _calls(init, "add_argument") == 2


def test_every_subcommand_is_defined_beside_its_run_function_in_a_command_module():
    from hf_synth.cli.options import Command

    registered = _subcommands(cli.build_parser())
    assert list(registered) == [command.name for command in cli.COMMANDS]
    for command in cli.COMMANDS:
        assert isinstance(command, Command)
        module = command.run.__module__
        assert module.startswith("hf_synth.cli.") and module not in (
            "hf_synth.cli.common",
            "hf_synth.cli.options",
        )
        assert command.add_arguments.__module__ == module, (
            f"{command.name}: parser and run in different modules"
        )
        assert command in vars(importlib.import_module(module)).values(), f"{command.name} is not {module}'s"
        # the registered parser is exactly what the module's add_arguments builds: nothing is added elsewhere
        alone = argparse.ArgumentParser(prog=registered[command.name].prog)
        command.add_arguments(alone)
        assert alone.format_help() == registered[command.name].format_help(), command.name


def test_the_shared_cli_modules_name_no_subcommand():
    """Nothing keyed by a command's name outside its module (the old ``commands`` dispatch dict and the
    inputs table of common.py were): adding a command touches its module and the registration only."""
    names = set(_subcommands(cli.build_parser()))
    for file in SHARED:
        tree = ast.parse((CLI_DIR / file).read_text(encoding="utf-8"))
        strings = {
            n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
        }
        assert not strings & names, f"hf_synth/cli/{file} names {sorted(strings & names)}"


def test_a_command_added_to_the_registration_parses_checks_its_inputs_and_runs(monkeypatch, tmp_path):
    from hf_synth.cli.options import Command

    seen: list[int] = []

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--input", required=True)
        parser.add_argument("--times", type=int, default=1)

    def run(args: argparse.Namespace) -> int:
        seen.append(args.times)
        return 0

    echo = Command("echo", "Print nothing, for a test", add_arguments, run, inputs=("input",))
    monkeypatch.setattr(cli, "COMMANDS", (*cli.COMMANDS, echo))
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"instruction": "Say hi."}\n', encoding="utf-8")
    assert cli.main(["echo", "--input", str(rows), "--times", "3"]) == 0
    assert seen == [3]
    # its inputs are refused before it runs, with the CLI's exit code for a bad input
    assert cli.main(["echo", "--input", str(tmp_path / "missing.jsonl")]) == 2
    assert seen == [3]
