"""``hf-synth review``: the review page, and ``--apply`` to write the reviewed dataset."""

from __future__ import annotations

import argparse
import logging

from ..configuration import add_options
from ..review.review_config import ReviewConfig
from .common import parse_config
from .options import Command

logger = logging.getLogger("hf_synth")


def review_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", help="Output folder of an hf-synth run")
    parser.add_argument("--input", help="The same as PATH")
    parser.add_argument("--config", help="YAML file with a 'review:' section; flags override it")
    add_options(parser.add_argument_group("review"), ReviewConfig)
    parser.add_argument(
        "--restart",
        action="store_true",
        help="Start a new review (the earlier one's folder is kept beside it as review-before-TIME)",
    )
    parser.add_argument(
        "--apply",
        action="store_true",
        help="Write the reviewed dataset to --output instead of serving the page",
    )
    parser.add_argument("--output", help="With --apply: folder for the reviewed dataset (a new run folder)")


def cmd_review(args: argparse.Namespace) -> int:
    run_dir = args.path or args.input
    if not run_dir:
        raise ValueError("Name the run to review: hf-synth review RUN_DIR (the --output folder of a run).")
    _, config = parse_config(args, "review", ReviewConfig, engine=False)
    if args.apply:
        if not args.output:
            raise ValueError("--apply writes the reviewed dataset to a new folder: add --output OUT.")
        from pathlib import Path

        from ..review import apply_review, save_reviewed

        if Path(args.output).expanduser().resolve() == Path(run_dir).expanduser().resolve():
            raise ValueError(
                "--output must be a new folder, not the run being reviewed (it is left as it is)."
            )

        result = apply_review(run_dir, skills=config.skills)
        paths = save_reviewed(result, run_dir, args.output)
        from ..review.apply import figures_lines

        print()
        for line in figures_lines(result.figures):
            print(line)
        print(f"  kept {len(result.dataset)} rows: {paths['dataset']}, {paths['jsonl']}")
        print(f"  rejected {len(result.rejected)} rows: {paths['rejected']}; card: {paths['card']}")
        return 0
    if args.output:
        raise ValueError("--output goes with --apply (the review page itself writes only RUN_DIR/review/).")
    from ..review import serve_review

    server = serve_review(run_dir, config, restart=args.restart, block=False)
    print(f"Review page: {server.url}  (Ctrl+C stops; every decision is already on disk)", flush=True)
    try:
        while server.thread is not None and server.thread.is_alive():
            server.thread.join(0.5)
    except KeyboardInterrupt:
        print("\nStopped; reopen the same command to continue.")
    finally:
        server.close()
    return 0


REVIEW = Command(
    "review",
    "Review rows in the browser (accept, reject, correct), then --apply the decisions",
    review_args,
    cmd_review,
)
