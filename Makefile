# Two entry points: `make report` (simulate + evaluate + write the report) and `make test`.
# Both create .venv on first use and reinstall when pyproject.toml changes.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR := data/synthetic
REPORT_DIR := reports
SCENARIO ?= default
SEED ?= 20120901

.PHONY: report test lint simulate benchmark clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Runtime install (what `make report` needs).
$(VENV)/.installed-base: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# Runtime + development and reference-implementation extras (what `make test` needs).
$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,reference]'
	touch $@ $(VENV)/.installed-base

# data/synthetic/ and reports/ are the project's own output directories (they ship with a
# README), so the Makefile writes into them with --overwrite; other files there are kept.
simulate: $(VENV)/.installed-base
	$(BIN)/evaluation simulate --scenario $(SCENARIO) --seed $(SEED) --out $(DATA_DIR) --overwrite

# The design Monte Carlo of the scenario shipped with the package (200+ replications) when
# there is one; otherwise the report runs a reduced one itself.
VALIDATION_RUN := evaluation/validation/runs/$(SCENARIO)
VALIDATION := $(if $(wildcard $(VALIDATION_RUN)/config.json),--validation $(VALIDATION_RUN),)

report: simulate
	$(BIN)/evaluation report --data $(DATA_DIR) --out $(REPORT_DIR) $(VALIDATION) --overwrite

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check evaluation tests benchmarks

test: $(VENV)/.installed-dev
	$(BIN)/ruff check evaluation tests benchmarks
	$(BIN)/python -m pytest -q

benchmark: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/simulate.py
	$(BIN)/python benchmarks/estimators.py
	$(BIN)/python benchmarks/matching.py
	$(BIN)/python benchmarks/report.py
	$(BIN)/python benchmarks/validate.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
