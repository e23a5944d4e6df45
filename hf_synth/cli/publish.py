"""``hf-synth push`` and ``hf-synth show``."""

from __future__ import annotations

import argparse
import logging

from .common import print_rows
from .options import Command

logger = logging.getLogger("hf_synth")


def push_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path", nargs="?", help="Output folder of an hf-synth run (dataset/, README.md, rejected.jsonl)"
    )
    parser.add_argument("--input", help="The same as PATH")
    parser.add_argument("repo_id", nargs="?", help="Dataset repo on the Hub, e.g. user/my-synthetic-data")
    parser.add_argument("--private", action="store_true", help="Create the repo as private")
    parser.add_argument("--token", help="Hub token (default: HF_TOKEN or the one saved by `hf auth login`)")
    parser.add_argument("--local-dir", help="Write the same repo layout here instead of (or before) pushing")
    parser.add_argument(
        "--new-only", action="store_true", help="Fail if the repo exists instead of updating it"
    )
    parser.add_argument(
        "--allow-empty",
        action="store_true",
        help="Publish a run that kept no rows (refused by default: load_dataset cannot read an empty split)",
    )


def cmd_push(args: argparse.Namespace) -> int:
    from ..hub import EMPTY_PUSH, push_to_hub, write_repo
    from ..run_folder import RunFolder

    if not (args.path or args.input):
        raise ValueError("Name the run folder to publish: hf-synth push PATH [REPO_ID] (or --input PATH).")
    run = RunFolder(args.path or args.input).require_run()
    if not args.repo_id and not args.local_dir:
        raise ValueError("Name a REPO_ID to push to, or --local-dir to write the repo layout locally.")
    dataset = run.read_dataset()
    if len(dataset) == 0 and not args.allow_empty:
        raise ValueError(EMPTY_PUSH.format(what=str(run.path), flag="--allow-empty"))
    rejected = run.read_rejected()
    card = run.read_card()
    if args.local_dir:
        write_repo(dataset, args.local_dir, card=card, rejected=rejected, allow_empty=args.allow_empty)
        print(f"Wrote the repo layout to {args.local_dir} (load_dataset({str(args.local_dir)!r}))")
    if args.repo_id:
        url = push_to_hub(
            dataset,
            args.repo_id,
            card=card,
            rejected=rejected,
            private=args.private,
            token=args.token,
            exist_ok=not args.new_only,
            allow_empty=args.allow_empty,
        )
        print(f"Pushed {len(dataset)} rows to {url}")
    return 0


PUSH = Command(
    "push", "Publish a run folder: parquet shards + dataset card, in one commit", push_args, cmd_push
)


def show_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", help="Output folder of a run, or its dataset/ folder")
    parser.add_argument("--input", help="The same as PATH")
    parser.add_argument("-n", type=int, default=3, help="Number of rows")


def cmd_show(args: argparse.Namespace) -> int:
    from datasets import load_from_disk

    from ..run_folder import dataset_folder

    if not (args.path or args.input):
        raise ValueError("Name the run folder to show: hf-synth show PATH (or --input PATH).")
    path = dataset_folder(args.path or args.input)
    dataset = load_from_disk(str(path))
    print(f"{path}: {len(dataset)} rows, columns: {', '.join(dataset.column_names)}")
    print_rows(dataset.select(range(min(args.n, len(dataset)))).to_list(), args.n)
    return 0


SHOW = Command("show", "Print rows of a dataset written by hf-synth", show_args, cmd_show)
