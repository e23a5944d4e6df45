"""The instant teacher's replies (bench/instant_teacher.py) served over the chat-completions protocol by
tests/chat_server.py, in a process of its own: the server benchmark's client and pipeline then do not
share a GIL with it. ``--latency-ms`` makes every answer wait that long first (as a GPU pool answers in
tens of ms); the handler threads wait side by side, so it is latency, not a throughput cap.

    .venv/bin/python bench/instant_chat_server.py --latency-ms 50   # prints "port N" once it listens
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

from chat_server import FakeChatServer  # noqa: E402

from bench.instant_teacher import prompt_text, reply_for  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="instant")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    server = FakeChatServer(lambda messages, body: reply_for(prompt_text(messages)), model=args.model)
    server.delay = args.latency_ms / 1000
    server.thread.start()
    print(f"port {server.port}", flush=True)
    # Serve until the benchmark closes our stdin (or dies: the pipe closes then too).
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
