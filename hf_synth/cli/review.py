"""``hf-synth review``: the review page, and ``--apply`` to write the reviewed dataset."""

from __future__ import annotations

import argparse
import logging

from .common import parse_config

logger = logging.getLogger("hf_synth")


def cmd_review(args: argparse.Namespace) -> int:
    from ..review import ReviewConfig

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
