# Set-up on a fresh machine: `make demo` or `make test` create .venv, install, then run.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# CPU build of torch, pinned in the same pip command as everything else so that no
# multi-GB CUDA build is pulled in by a floating requirement.
TORCH_PIN := torch==2.13.0
STAMP := $(VENV)/.installed
# Real data: the loaders look in $COSTROUTE_DATA first, then the user cache, then download.
# Next to a checkout that has ../shared/data, use it.
COSTROUTE_DATA ?= $(abspath $(wildcard ../shared/data))
ifneq ($(strip $(COSTROUTE_DATA)),)
export COSTROUTE_DATA
endif

.PHONY: install demo test bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_PIN)" -e ".[dev,plot]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) examples/quickstart.py

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow" --doctest-modules costroute tests

bench: $(STAMP)
	$(PY) benchmarks/routing_speed.py
	$(PY) benchmarks/paper_table.py

clean:
	rm -rf $(VENV) build *.egg-info
