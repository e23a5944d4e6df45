"""How a command module declares its subcommands: the :class:`Command` record (name, help, its flags, its
run function) and the option groups several commands share (--config, --max-new-tokens, --resume and
--overwrite, the engine flags). Light: imports no heavy library."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..configuration import add_options
from ..engine.engine_config import EngineConfig


@dataclass(frozen=True)
class Command:
    """One ``hf-synth`` subcommand, defined in its command module beside its run function and listed once
    in ``hf_synth.cli.COMMANDS`` (the registration).

    ``add_arguments`` adds the command's flags to its parser; ``run`` takes the parsed arguments and
    returns the exit code; ``inputs`` names the arguments holding dataset paths, refused at once when
    missing or broken (before torch, nltk or numba are imported)."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    inputs: tuple[str, ...] = ()

    def register(self, subparsers: Any) -> argparse.ArgumentParser:
        """Add this command's parser, with its flags, to ``subparsers`` (what the top-level parser's
        ``add_subparsers()`` returned)."""
        parser = subparsers.add_parser(self.name, help=self.help)
        self.add_arguments(parser)
        return parser


def add_engine_args(parser: argparse.ArgumentParser) -> None:
    """--model, --batch-size, --backend, --device, --dtype: the option fields of EngineConfig."""
    add_options(parser.add_argument_group("model"), EngineConfig)


def add_config_arg(parser: argparse.ArgumentParser, sections: str = "'engine:'") -> None:
    parser.add_argument("--config", help=f"YAML file with {sections} section(s); flags override it")


def add_max_new_tokens(parser: argparse.ArgumentParser, what: str = "each generated text") -> None:
    parser.add_argument("--max-new-tokens", type=int, help=f"Token limit for {what}")


def add_checkpoint_args(parser: argparse.ArgumentParser) -> None:
    """--resume / --overwrite, for every command that keeps checkpoints under --output."""
    parser.add_argument(
        "--resume",
        action="store_true",
        help="Continue an interrupted run in --output (an error if it has no checkpoints)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="Discard checkpoints of an earlier run in --output instead of resuming",
    )
