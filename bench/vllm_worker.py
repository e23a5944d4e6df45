"""vLLM side of ``bench/bench_throughput.py``: runs inside an environment with vllm installed.

Standalone on purpose (that environment pins its own torch and transformers and need not have
hf-synth's dependencies): it reads the token ids the main benchmark wrote, generates with the same
sampling settings and prints one ``RESULT {json}`` line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts-file", required=True)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--slots", type=int, default=64)
    args = parser.parse_args()
    data = json.loads(Path(args.prompts_file).read_text())

    import torch
    from vllm import LLM, SamplingParams

    # Per-request seeds crash vLLM's CPU build: seed the engine once.
    llm = LLM(model=data["model_dir"], dtype="float32", seed=0, max_model_len=2048)
    prompts = [{"prompt_token_ids": ids} for ids in data["input_ids"]]
    llm.generate(prompts[:2], SamplingParams(max_tokens=4), use_tqdm=False)  # warm-up
    params = SamplingParams(max_tokens=args.max_new_tokens, temperature=args.temperature, top_p=1.0)
    started = time.perf_counter()
    outputs = llm.generate(prompts, params, use_tqdm=False)
    seconds = time.perf_counter() - started
    tokens = sum(len(o.outputs[0].token_ids) for o in outputs)
    # vLLM's CPU engine core runs in a child process: add the peaks (VmHWM) of every live child.
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for child in Path("/proc").glob("[0-9]*/status"):
        try:
            status = child.read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("PPid", "").strip() == str(os.getpid()) and "VmHWM" in fields:
            peak_kb += int(fields["VmHWM"].split()[0])
    result = {
        "tokens": tokens,
        "seconds": seconds,
        "tok_s": tokens / seconds,
        "peak_rss_mb": round(peak_kb / 1024),
        "threads": torch.get_num_threads(),
        "batch": "vLLM scheduler (default max_num_seqs)",
    }
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
