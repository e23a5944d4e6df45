"""The ``hf-synth`` command line: the top-level parser, the registration (:data:`COMMANDS`) and dispatch
here; each subcommand's flags and run function in its command module (one per group of subcommands)."""

from __future__ import annotations

import argparse
import logging
import sys

from . import augment, curate, generate, publish, refine, review
from .common import check_input_files, check_output, check_resume
from .options import Command

logger = logging.getLogger("hf_synth")


#: The registration: every subcommand, in the order ``hf-synth --help`` lists them. Each is defined in its
#: command module (its flags beside its run function); a new command is a :class:`~.options.Command` there
#: and one entry here.
COMMANDS: tuple[Command, ...] = (
    generate.SELF_INSTRUCT,
    generate.EVOL_INSTRUCT,
    refine.REFINE,
    curate.FILTER,
    curate.REPORT,
    review.REVIEW,
    publish.PUSH,
    augment.PARAPHRASE,
    augment.NEGATIVES,
    augment.BLEND,
    augment.SLOTS,
    augment.BACKTRANSLATE,
    generate.GENERATE,
    publish.SHOW,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hf-synth", description="Build synthetic fine-tuning datasets.")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="Level of hf-synth's log messages; DEBUG also shows the traceback of an error (default: INFO)",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="Also show the progress bars and logs of datasets and transformers (by default only "
        "hf-synth's own bar per generation step, with rows and tok/s, and hf-synth's log)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def quiet_libraries() -> None:
    """datasets' internal bars (Map, Filter, Saving, Casting...), transformers' and huggingface_hub's bars
    ("Loading weights", downloads) and the info logs of datasets and transformers off: a run shows
    hf-synth's own bar and log (see :mod:`hf_synth.progress`). Imports neither library."""
    from ..progress import quiet_libraries as quiet

    quiet()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.verbose:
        quiet_libraries()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger.setLevel(args.log_level)
    command = {c.name: c for c in COMMANDS}[args.command]
    try:
        if getattr(args, "output", None):  # before anything loads, and before anything is written
            check_output(args)
        if hasattr(args, "resume"):  # every command that keeps checkpoints: checked before any model loads
            check_resume(args)
        check_input_files(args, command.inputs)  # a bad input file: refused before torch, nltk, numba
        return command.run(args)
    except (ValueError, TypeError, OSError, RuntimeError) as err:  # HubPushError is a RuntimeError
        if args.log_level == "DEBUG":
            raise
        # an error that has a command-line wording (e.g. --overwrite for overwrite=True) says it that way
        text = err.cli_text() if callable(getattr(err, "cli_text", None)) else str(err)
        print(f"hf-synth: error: {text}", file=sys.stderr)
        return 2


__all__ = ["COMMANDS", "build_parser", "main"]
