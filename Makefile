# vrl_nb: every target brings the machine up by itself (idempotent, stamp file).
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.vrl_nb-setup.stamp
FMNIST_DIR ?= /usr/share/datasets/fashion-mnist
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export VRL_NB_FMNIST_DIR ?= $(FMNIST_DIR)
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: help setup data chromium hey sync lint test test-nbs test-py report docs readme lab clean-venv

help:
	@echo "make test    - set up (venv, pinned deps, kernel, data) and run all tests"
	@echo "make report  - set up and run the default report suite on the embedded catalog"
	@echo "make docs    - Sphinx + myst-nb site of the notebooks in _docs/ (no quarto; DOCS_ARGS='--execute off' etc.)"
	@echo "make lab     - JupyterLab on the project's kernel"

# --- setup -----------------------------------------------------------------
$(STAMP): setup.py settings.ini
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch/torchvision first, pinned: pip takes them from this machine's disk
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e ".[dev,docs,distributed,bench,serve]"
	$(PY) -m ipykernel install --sys-prefix --name vrl_nb --display-name "Python (vrl_nb)" >/dev/null
	touch $@

setup: $(STAMP) data hey

data:
	@# Fashion-MNIST (MIT; the embedded catalog) and two icon themes (the second real catalog: oxygen LGPL-3+, gnome GPL-2+)
	@missing=""; \
	ls $(FMNIST_DIR)/train-images-idx3-ubyte.gz >/dev/null 2>&1 || missing="$$missing dataset-fashion-mnist"; \
	test -d /usr/share/icons/oxygen/base/128x128/places || missing="$$missing oxygen-icon-theme"; \
	test -d /usr/share/icons/gnome/256x256/places || missing="$$missing gnome-icon-theme"; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "Installing Debian's$$missing ..."; \
	  (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else \
	  echo "Missing Debian packages:$$missing. Run:  sudo apt-get install -y$$missing"; \
	  echo "(or set FMNIST_DIR=/path/with/the/idx/gz/files)"; exit 1; \
	fi

# headless Chromium for the docs' browser test and screenshots (Debian's chromium)
chromium:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "Installing Debian's chromium (headless browser for the docs test) ..."; \
	  (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
	  echo "chromium is missing. Run:  sudo apt-get install -y chromium"; exit 1; \
	fi

# Debian's hey (a Go HTTP load generator) runs the closed-loop stages of `vrl_nb loadtest` with far less CPU per
# request than a Python client; optional: without it the load test uses aiohttp, and says which client ran.
hey:
	@if command -v hey >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "Installing Debian's hey (HTTP load generator for vrl_nb loadtest) ..."; \
	  (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hey >/dev/null || \
	    echo "note: hey could not be installed; vrl_nb loadtest uses aiohttp instead"; \
	else \
	  echo "note: hey is not installed (sudo apt-get install -y hey); vrl_nb loadtest uses aiohttp instead"; \
	fi

# --- tests -----------------------------------------------------------------
sync: setup
	@# the library must be exactly what the notebooks export
	$(BIN)/nbdev_export
	@if [ -n "$$(git status --porcelain -- vrl_nb 2>/dev/null)" ]; then \
	  echo "vrl_nb/ differs from what nbs/ exports (edit notebooks, run nbdev_export, commit):"; \
	  git status --porcelain -- vrl_nb; git diff --stat -- vrl_nb; exit 1; fi

# pyflakes rules and the line length on the exported modules (the notebooks are their source: fix it there).
# Code is wrapped at 120; 130 leaves room for the `__all__` lines nbdev writes (a 120 wrap plus `__all__ = `).
RUFF_LINE ?= 130
lint: setup
	$(BIN)/ruff check --no-cache --select F,E501 --line-length $(RUFF_LINE) --extend-exclude vrl_nb/_modidx.py vrl_nb

test-nbs: setup
	$(BIN)/nbdev_test --n_workers 2 --timing

test-py: setup chromium
	$(BIN)/pytest -q tests/

# The notebook tests and pytest run side by side: alone, each leaves a core idle much of the time (kernel starts,
# imports, single-threaded pandas). OMP_WAIT_POLICY=PASSIVE makes torch's OpenMP threads sleep instead of spinning
# while they wait, which on 2 cores shared by both is what keeps the overlap a gain (measured 2026-12-03: 831 s side
# by side with spinning threads, 514 s with passive ones, ~930 s one after the other).
test: sync lint
	@echo "notebook tests and pytest run side by side; each prints its output when it ends"
	OMP_WAIT_POLICY=PASSIVE $(MAKE) --no-print-directory -j2 --output-sync=target test-nbs test-py

# --- jobs ------------------------------------------------------------------
report: setup
	$(BIN)/vrl_nb report --suite default $(REPORT_ARGS)

docs: setup chromium
	$(PY) nbs/_sphinx/build.py --quick-suite-if-none $(DOCS_ARGS)

readme: setup
	$(PY) nbs/_sphinx/build.py --readme

lab: setup
	$(BIN)/jupyter lab --notebook-dir=nbs

clean-venv:
	rm -rf $(VENV)
