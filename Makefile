# Two entry points on a fresh machine: `make demo` and `make test`.
# Each creates .venv (once), installs mmscale with the extras it needs and runs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch/torchvision pinned to the builds these machines serve from local disk;
# the code itself also runs on torch 2.11 / torchvision 0.26.
TORCH_PIN := torch==2.14.1 torchvision==0.29.1
DEMO_DIR ?= runs/demo
# Tests run on three worker processes (pytest-xdist), each file whole on one worker, so a file's
# fixtures are built once; three on two cores, because many tests wait on a server or a child
# process and leave a core idle. Timing tests compare partners measured in the same window, so
# the other workers' load falls on both; tests marked whole_machine (threads contending for the
# cores) run afterwards, alone. TEST_WORKERS=0 runs the whole suite in one process.
TEST_WORKERS ?= 3

# The demo runs `mmscale validate --preset cpu`, which spawns the server and load generator (serve)
# and draws report.html's charts (report); the tests need every extra and their own tools (test).
DEMO_EXTRAS := serve,report

.PHONY: install demo test clean

# pip compiles bytecode one file at a time; installing without it and compiling on every core
# after is about 40 s faster on two cores. A few files of torch's own test helpers are written for
# newer Pythons and do not compile, which makes compileall exit 1: those are never imported.
COMPILE := $(BIN)/python -m compileall -qq -j 0 $(VENV)/lib || true

$(VENV)/.installed-torch:
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --no-compile $(TORCH_PIN)
	touch $@

$(VENV)/.installed-demo: pyproject.toml $(VENV)/.installed-torch
	$(BIN)/pip install -q --no-compile -e '.[$(DEMO_EXTRAS)]'
	$(COMPILE)
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed-torch
	$(BIN)/pip install -q --no-compile -e '.[test]'
	$(COMPILE)
	touch $@

install: $(VENV)/.installed-test

demo: $(VENV)/.installed-demo
	$(BIN)/mmscale validate --preset cpu --out $(DEMO_DIR)

test: $(VENV)/.installed-test
ifeq ($(TEST_WORKERS),0)
	$(BIN)/python -m pytest -q
else
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not whole_machine"
	$(BIN)/python -m pytest -q -m whole_machine || [ $$? -eq 5 ]  # 5: no test carries the mark
endif

clean:
	rm -rf $(VENV) runs
