# The two commands of the README are `make run` and `make test`; both set themselves up.
# Everything runs inside .venv, made from requirements.txt (the pinned dependencies).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))

.PHONY: setup run test test-fast outputs model bench slides clean help

help:
	@echo "make run      execute every notebook on the embedded data (build/), print a summary"
	@echo "make test     pytest over tests/ and every notebook (nbval), quick profile"
	@echo "make outputs  re-execute the notebooks in place (full profile) to refresh committed outputs"
	@echo "make model    retrain the shipped detector in models/crnn (full profile, about 10 min)"
	@echo "make bench    every system's quality, speed and memory, make run's time: results/bench.json,"
	@echo "              results/bench.md and the README's results table (about 45 min)"
	@echo "make slides   the talk: slides/talk.md -> slides/build/index.html (reveal.js, offline; npm once)"

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/python tools/run_notebooks.py --out build $(NOTEBOOKS)

test: setup
	AED_PROFILE=quick $(BIN)/python -m pytest tests helpers notebooks --doctest-modules --nbval-lax --current-env

test-fast: setup
	AED_PROFILE=quick $(BIN)/python -m pytest tests helpers --doctest-modules

outputs: setup
	$(BIN)/python tools/run_notebooks.py --out build --in-place $(NOTEBOOKS)

clean:
	rm -rf build .pytest_cache

model: setup
	$(BIN)/python tools/make_model.py --heldout

bench: setup
	$(BIN)/python bench/run_bench.py

slides: setup
	$(BIN)/python slides/build.py
