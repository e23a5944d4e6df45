"""The ``hf-synth`` command line: the parser and dispatch here, one module per group of subcommands."""

from __future__ import annotations

import argparse
import logging
import sys

from ..augment.augment_config import NegativeConfig, ParaphraseConfig
from ..configuration import add_options, field_docs
from ..engine.engine_config import EngineConfig, SamplingParams
from ..evol_instruct.evol_instruct_config import EvolInstructConfig
from ..refine.refine_config import RefineConfig
from ..review.review_config import ReviewConfig
from ..self_instruct.self_instruct_config import SelfInstructConfig
from .augment import cmd_backtranslate, cmd_blend, cmd_negatives, cmd_paraphrase, cmd_slots
from .common import check_input_files, check_output, check_resume
from .curate import cmd_filter, cmd_report
from .generate import cmd_evol_instruct, cmd_generate, cmd_self_instruct
from .publish import cmd_push, cmd_show
from .refine import cmd_refine
from .review import cmd_review

logger = logging.getLogger("hf_synth")


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

    si = sub.add_parser("self-instruct", help="Grow an instruction dataset from seeds with Self-Instruct")
    si.add_argument(
        "--seeds",
        "--input",
        dest="seeds",
        help="Seed file (.jsonl/.json/.csv/.parquet), dataset folder or Hub id "
        "(default: hf-synth's example seeds)",
    )
    si.add_argument("--split", help="Split of the seed dataset (default: train, or the only split)")
    si.add_argument("--output", required=True, help="Output folder")
    si.add_argument("--config", help="YAML file with 'engine:' and 'self_instruct:' sections")
    si.add_argument("--max-new-tokens", type=int, help="Token limit for instruction and instance generation")
    add_options(si.add_argument_group("self-instruct"), SelfInstructConfig)
    add_checkpoint_args(si)
    si.add_argument("--show", type=int, default=3, help="Rows to print at the end (default 3)")
    add_engine_args(si)

    ev = sub.add_parser("evol-instruct", help="Evolve an instruction dataset with Evol-Instruct")
    ev.add_argument(
        "--input", required=True, help="Instruction file, dataset folder, hf-synth run folder or Hub id"
    )
    ev.add_argument("--split", help="Split of the input dataset (default: train, or the only split)")
    ev.add_argument("--output", required=True, help="Output folder")
    ev.add_argument("--config", help="YAML file with 'engine:' and 'evol_instruct:' sections")
    ev.add_argument("--judge-model", help="Judge model (default: the evolving model)")
    ev.add_argument("--response-model", help="Model that answers the evolved instructions (default: --model)")
    ev.add_argument("--operations", help="Operation weights, e.g. deepening=2,breadth=1 (default: uniform)")
    ev.add_argument(
        "--no-judge", action="store_true", help="Eliminate with the rules only, without an LLM judge"
    )
    ev.add_argument(
        "--max-new-tokens",
        type=int,
        help="Token limit for every generation of the run: evolutions, judge verdicts and responses "
        "(default: per step, 160, 6 and 256)",
    )
    add_options(ev.add_argument_group("evol-instruct"), EvolInstructConfig)
    add_checkpoint_args(ev)
    ev.add_argument("--show", type=int, default=2, help="Lineages to print at the end (default 2)")
    add_engine_args(ev)

    ref = sub.add_parser(
        "refine", help="The closed loop: generate, fine-tune a student, evaluate it, target its weak skills"
    )
    ref.add_argument(
        "--seeds", "--input", dest="seeds", help="Seed tasks (default: hf-synth's example seeds)"
    )
    ref.add_argument("--split", help="Split of the seed dataset")
    ref.add_argument(
        "--eval", required=True, help="Held-out tasks with reference outputs (file, folder or Hub id)"
    )
    ref.add_argument("--output", required=True, help="Output folder (every round's data, student, scores)")
    ref.add_argument("--config", help="YAML file with 'engine:' and 'refine:' sections")
    ref.add_argument(
        "--max-new-tokens", type=int, help="Token limit for generated instructions and instances"
    )
    add_options(ref.add_argument_group("refine"), RefineConfig)
    add_checkpoint_args(ref)
    add_engine_args(ref)

    flt = sub.add_parser(
        "filter", help="Score and filter any dataset (ROUGE novelty, near-duplicates, length, ...)"
    )
    flt.add_argument("--input", required=True, help="Dataset file, folder, hf-synth run folder or Hub id")
    flt.add_argument("--split", help="Split of the input dataset")
    flt.add_argument("--config", required=True, help="YAML file with a 'filters:' list")
    flt.add_argument(
        "--output", required=True, help="Output folder (kept rows; dropped rows in rejected.jsonl)"
    )
    add_checkpoint_args(flt)

    rep = sub.add_parser("report", help="Skill coverage, filter statistics and an HTML quality report")
    rep.add_argument("path", nargs="?", help="hf-synth run folder, dataset file or folder, or Hub id")
    rep.add_argument("--input", help="The same as PATH")
    rep.add_argument("--split", help="Split of the input dataset")
    rep.add_argument("--column", default="instruction", help="Column to classify (default: instruction)")
    rep.add_argument("--taxonomy", help="YAML file 'skill: description' (default: hf-synth's skills)")
    rep.add_argument(
        "--skill-examples",
        help="JSONL of labelled instructions ({instruction, skill}) to fit the skill classifier on "
        "(default: hf-synth's examples for its taxonomy)",
    )
    rep.add_argument(
        "--embedding-model", help="sentence-transformers model (default: packaged all-MiniLM-L6-v2)"
    )
    rep.add_argument(
        "--out", "--output", dest="out", help="Write the report here: .html (plots) or .json (numbers)"
    )
    rep.add_argument("--seeds", help="Seed file/folder: plot each instruction's ROUGE-L to its nearest seed")
    rep.add_argument(
        "--compare",
        nargs="+",
        metavar="RUN",
        help="Print the diversity figures of these run folders (or datasets) side by side, one column each",
    )

    rev = sub.add_parser(
        "review", help="Review rows in the browser (accept, reject, correct), then --apply the decisions"
    )
    rev.add_argument("path", nargs="?", help="Output folder of an hf-synth run")
    rev.add_argument("--input", help="The same as PATH")
    rev.add_argument("--config", help="YAML file with a 'review:' section; flags override it")
    add_options(rev.add_argument_group("review"), ReviewConfig)
    rev.add_argument(
        "--restart",
        action="store_true",
        help="Start a new review (the earlier one's folder is kept beside it as review-before-TIME)",
    )
    rev.add_argument(
        "--apply",
        action="store_true",
        help="Write the reviewed dataset to --output instead of serving the page",
    )
    rev.add_argument("--output", help="With --apply: folder for the reviewed dataset (a new run folder)")

    push = sub.add_parser("push", help="Publish a run folder: parquet shards + dataset card, in one commit")
    push.add_argument(
        "path", nargs="?", help="Output folder of an hf-synth run (dataset/, README.md, rejected.jsonl)"
    )
    push.add_argument("--input", help="The same as PATH")
    push.add_argument("repo_id", nargs="?", help="Dataset repo on the Hub, e.g. user/my-synthetic-data")
    push.add_argument("--private", action="store_true", help="Create the repo as private")
    push.add_argument("--token", help="Hub token (default: HF_TOKEN or the one saved by `hf auth login`)")
    push.add_argument("--local-dir", help="Write the same repo layout here instead of (or before) pushing")
    push.add_argument(
        "--new-only", action="store_true", help="Fail if the repo exists instead of updating it"
    )
    push.add_argument(
        "--allow-empty",
        action="store_true",
        help="Publish a run that kept no rows (refused by default: load_dataset cannot read an empty split)",
    )

    para = sub.add_parser("paraphrase", help="Add k paraphrases of each row's instruction or response")
    para.add_argument("--input", required=True, help="Dataset file, folder, hf-synth run folder or Hub id")
    para.add_argument("--output", required=True, help="Output folder")
    add_config_arg(para, "'engine:' and 'paraphrase:'")
    add_max_new_tokens(para, "each paraphrase")
    add_options(para.add_argument_group("paraphrase"), ParaphraseConfig)
    para.add_argument(
        "--check-task",
        action="store_true",
        help="Ask a judge whether each reworded instruction still asks for the same thing",
    )
    para.add_argument("--judge-model", help="Model for --check-task (default: --model)")
    add_checkpoint_args(para)
    add_engine_args(para)

    neg = sub.add_parser(
        "negatives", help="Preference pairs: each row's output vs a deliberately flawed answer"
    )
    neg.add_argument("--input", required=True, help="Dataset file, folder, hf-synth run folder or Hub id")
    neg.add_argument(
        "--output", required=True, help="Output folder (prompt/chosen/rejected, for scripts/dpo.py)"
    )
    add_config_arg(neg, "'engine:' and 'negatives:'")
    add_max_new_tokens(neg, "each flawed answer")
    add_options(neg.add_argument_group("negatives"), NegativeConfig)
    add_checkpoint_args(neg)
    add_engine_args(neg)

    bl = sub.add_parser("blend", help="Mix several datasets with ratios or counts per source")
    bl.add_argument(
        "--source",
        action="append",
        required=True,
        metavar="NAME=PATH",
        help="A source: name=file, folder, hf-synth run folder or Hub id (repeat)",
    )
    bl.add_argument("--ratio", action="append", metavar="NAME=R", help="Share of a source (repeat)")
    bl.add_argument("--count", action="append", metavar="NAME=N", help="Rows from a source (repeat)")
    bl.add_argument("--total", type=int, help="Rows in the mix when --ratio is given")
    bl.add_argument("--no-dedup", action="store_true", help="Keep exact duplicates across sources")
    bl.add_argument(
        "--seed",
        type=int,
        default=0,
        help="Seed of the row sampling and of the shuffle of the mix (default 0)",
    )
    bl.add_argument("--output", required=True, help="Output folder")

    sl = sub.add_parser("slots", help="Fill a template's [SLOTS] with varied values and answer the results")
    sl.add_argument("--template", required=True, help='e.g. "Explain [X] in the context of [Y] for [Z]"')
    sl.add_argument(
        "--values",
        action="append",
        metavar="SLOT=a|b|c",
        help="Values for a slot, separated by | (repeat); other slots get values from the model",
    )
    sl.add_argument("--count", type=int, default=8, help="Values the model proposes per slot (default 8)")
    sl.add_argument("--num", type=int, default=20, help="Instructions to make (distinct combinations)")
    sl.add_argument("--seed", type=int, default=0, help="Seed of the choice of slot combinations (default 0)")
    sl.add_argument("--output", required=True, help="Output folder")
    add_config_arg(sl)
    add_max_new_tokens(sl, "each answer")
    add_checkpoint_args(sl)
    add_engine_args(sl)

    bt = sub.add_parser("backtranslate", help="Reword instructions through a pivot language and back")
    bt.add_argument("--input", required=True, help="Dataset file, folder, hf-synth run folder or Hub id")
    bt.add_argument("--output", required=True, help="Output folder")
    bt.add_argument("--pivot", default="French", help="Pivot language (default French)")
    bt.add_argument(
        "--to-pivot-model", help="Translation model (path/Hub id, e.g. a Marian model) into the pivot"
    )
    bt.add_argument("--from-pivot-model", help="Translation model back from the pivot")
    bt.add_argument(
        "--min-similarity",
        type=float,
        default=0.75,
        help="Reject a rewording whose embedding cosine to the original is below this: its meaning "
        "drifted (default 0.75)",
    )
    bt.add_argument(
        "--max-similarity",
        type=float,
        default=0.98,
        help="Reject a rewording whose embedding cosine to the original is this or above: it barely "
        "changed (default 0.98)",
    )
    add_config_arg(bt)
    add_max_new_tokens(bt, "each translation")
    add_checkpoint_args(bt)
    add_engine_args(bt)

    gen = sub.add_parser(
        "generate",
        help="One completion per row of a prompt column (data-parallel under `accelerate launch`)",
    )
    gen.add_argument(
        "--input", required=True, help="File, folder or Hub id of a dataset with a prompt column"
    )
    gen.add_argument("--output", required=True, help="Output folder (written by the main process)")
    gen.add_argument("--prompt-column", default="prompt", help="Column with a string or chat messages")
    gen.add_argument(
        "--output-column", default="output", help="Column the completions are written to (default: output)"
    )
    gen.add_argument("--max-new-tokens", type=int, default=256, help="Token limit per completion")
    add_config_arg(gen)
    sampling_docs = field_docs(SamplingParams)  # the sampling flags are SamplingParams' fields
    gen.add_argument(
        "--temperature", type=float, default=0.7, help=f"{sampling_docs['temperature']} (default 0.7)"
    )
    gen.add_argument("--top-p", type=float, default=1.0, help=f"{sampling_docs['top_p']} (default 1.0)")
    gen.add_argument("--seed", type=int, default=0, help=f"{sampling_docs['seed']} (default 0)")
    add_checkpoint_args(gen)
    add_engine_args(gen)

    show = sub.add_parser("show", help="Print rows of a dataset written by hf-synth")
    show.add_argument("path", nargs="?", help="Output folder of a run, or its dataset/ folder")
    show.add_argument("--input", help="The same as PATH")
    show.add_argument("-n", type=int, default=3, help="Number of rows")
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
    commands = {
        "self-instruct": cmd_self_instruct,
        "evol-instruct": cmd_evol_instruct,
        "refine": cmd_refine,
        "filter": cmd_filter,
        "report": cmd_report,
        "review": cmd_review,
        "push": cmd_push,
        "paraphrase": cmd_paraphrase,
        "negatives": cmd_negatives,
        "blend": cmd_blend,
        "slots": cmd_slots,
        "backtranslate": cmd_backtranslate,
        "generate": cmd_generate,
        "show": cmd_show,
    }
    try:
        if getattr(args, "output", None):  # before anything loads, and before anything is written
            check_output(args)
        if hasattr(args, "resume"):  # every command that keeps checkpoints: checked before any model loads
            check_resume(args)
        check_input_files(args)  # a bad input file is refused before torch, nltk and numba are imported
        return commands[args.command](args)
    except (ValueError, TypeError, OSError, RuntimeError) as err:  # HubPushError is a RuntimeError
        if args.log_level == "DEBUG":
            raise
        # an error that has a command-line wording (e.g. --overwrite for overwrite=True) says it that way
        text = err.cli_text() if callable(getattr(err, "cli_text", None)) else str(err)
        print(f"hf-synth: error: {text}", file=sys.stderr)
        return 2


__all__ = ["main"]
