# Two commands for a user: `make demo` and `make test`. Everything else builds on `venv`.
PYTHON ?= python3
VENV ?= .venv
# Override for another CUDA build, e.g. TORCH_PKGS="torch==2.4.1 torchvision==0.19.1 torchcodec==T", with T
# the torchcodec release built for that torch (torchcodec's compatibility table). torchcodec decodes with
# the system's FFmpeg shared libraries (docs/video.md; .ci/run installs them).
TORCH_PKGS ?= torch==2.14.1 torchvision==0.29.1 torchcodec==0.17.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.vlprep-installed

.PHONY: venv test demo bench lint

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_PKGS)
	$(BIN)/python -m pip install -q -e '.[test,torchcodec]'
	touch $(STAMP)

test: venv
	$(BIN)/python -m pytest

demo: venv
	$(BIN)/vlprep demo demo-out/

bench: venv
	$(BIN)/python benchmarks/run_all.py

lint: venv
	$(BIN)/ruff check vlprep tests benchmarks
	$(BIN)/ruff format --check vlprep tests benchmarks
