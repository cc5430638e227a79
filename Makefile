# Two entry points on a fresh machine: `make demo` and `make test`.
# Each creates .venv (once), installs mmscale into it and runs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch/torchvision pinned to the builds these machines serve from local disk;
# the code itself also runs on torch 2.11 / torchvision 0.26.
TORCH_PIN := torch==2.14.1 torchvision==0.29.1
DEMO_DIR ?= runs/demo

.PHONY: install demo test clean

$(BIN)/mmscale: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_PIN)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(BIN)/mmscale

demo: install
	$(BIN)/mmscale validate --preset cpu --out $(DEMO_DIR)

test: install
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs
