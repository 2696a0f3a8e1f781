# dmlkit: the two set-up commands are `make figures` and `make test` (see README.md).
# Both create .venv on first use (Python 3.11 and pip are all a fresh machine needs).

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.dmlkit-installed
FIGURES_ARGS ?=
PYTEST_ARGS  ?=

.PHONY: venv figures results smoke test test-fast lint format lab clean-notebooks nbval help

help:
	@echo "make figures   regenerate every figure (default budget) into figures/"
	@echo "make results   the tuned, converged study notebook 07 reads, into figures/study/ (about 2 h; resumes)"
	@echo "make smoke     run every notebook at the smoke budget into build/smoke-figures/"
	@echo "make test      run the whole test suite (unit tests + every notebook at the smoke budget)"
	@echo "make test-fast the unit tests only (no notebook runs; under 2 minutes)"
	@echo "make lint      ruff check and ruff format --check (make format rewrites)"
	@echo "make lab       open JupyterLab on notebooks/ with the kit's kernel"

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: no python3.11 or python3 on PATH"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { echo "error: '$(PYTHON) -m venv' failed (on Debian: apt install python3-venv)"; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

figures: $(STAMP)
	$(BIN)/dmlkit figures $(FIGURES_ARGS)

# The study behind notebook 07 (dmlkit/study.py): finished runs are kept in figures/study/runs/,
# so an interrupted run resumes where it stopped. RESULTS_ARGS: e.g. --smoke --out /tmp/study.
RESULTS_ARGS ?=
results: $(STAMP)
	$(BIN)/dmlkit results $(RESULTS_ARGS)

smoke: $(STAMP)
	$(BIN)/dmlkit figures --smoke --out build/smoke-figures $(FIGURES_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not notebook" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# nbval's own run of the notebooks' golden text cells (the test suite checks them too).
nbval: $(STAMP)
	DMLKIT_HEADLESS=1 DMLKIT_SMOKE=1 DMLKIT_FIGURES=$(CURDIR)/build/nbval-figures $(BIN)/python -m pytest --nbval-lax --nbval-current-env notebooks/

# As root (a container) JupyterLab refuses to start without --allow-root; kernels talk over IPC
# sockets in build/kernels (local files, no unencrypted TCP). LAB_ARGS: e.g. --no-browser --port=8890.
LAB_ARGS ?=
LAB_DIR  ?= notebooks/
lab: $(STAMP)
	$(BIN)/python -m ipykernel install --sys-prefix --name dmlkit --display-name "Python (dmlkit)"
	@mkdir -p build/kernels
	$(BIN)/jupyter lab $(LAB_DIR) $(if $(filter 0,$(shell id -u)),--allow-root,) \
		--KernelManager.transport=ipc --KernelManager.ip=$(CURDIR)/build/kernels/kernel $(LAB_ARGS)

# Strip outputs from the notebooks, keeping the text of NBVAL_CHECK_OUTPUT cells.
clean-notebooks: $(STAMP)
	$(BIN)/python tools/notebooks.py strip notebooks/*.ipynb
