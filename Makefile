# Set-up on a fresh machine: `make demo` or `make test` create .venv, install, then run.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# torch is pinned in the same pip command as everything else, so that no floating requirement
# (diffusers, sentence-transformers) can pull in another build. What the pin installs depends on
# the machine: on Linux, the package registry's default torch 2.13.0 wheel is built with CUDA and
# brings the NVIDIA libraries (several GB); a machine whose pip is configured with a local wheel
# folder may get a CPU build instead. For the CPU-only build on a plain Linux machine, point
# TORCH_INDEX at PyTorch's CPU wheel index (not the default: that index may be unreachable), e.g.
#   make test TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
TORCH_PIN := torch==2.13.0$(if $(TORCH_INDEX),+cpu)
PIP_TORCH_INDEX := $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
STAMP := $(VENV)/.installed
# Real data: the loaders look in $COSTROUTE_DATA first, then the user cache, then download.
# Next to a checkout that has ../shared/data, use it.
COSTROUTE_DATA ?= $(abspath $(wildcard ../shared/data))
ifneq ($(strip $(COSTROUTE_DATA)),)
export COSTROUTE_DATA
endif

.PHONY: install demo test bench docs lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(PIP_TORCH_INDEX) "$(TORCH_PIN)" -e ".[dev,plot,ray,docs,serve]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) examples/quickstart.py

# The suite runs on TEST_WORKERS processes (pytest-xdist), a test file per process at a time:
# tests run on one thread each (tests/conftest.py), so two workers keep a 2-core machine busy.
TEST_WORKERS ?= 2

test: $(STAMP) lint
	$(PY) -m pytest -q -m "not slow" --doctest-modules -n $(TEST_WORKERS) --dist loadfile costroute tests

bench: $(STAMP)
	$(PY) benchmarks/routing_speed.py
	$(PY) benchmarks/paper_table.py

# HTML documentation in docs/_build/html; any Sphinx warning fails the build.
docs: $(STAMP)
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

# Style checks; `make test` runs them first.
lint: $(STAMP)
	$(PY) -m ruff check costroute tests benchmarks examples docs/conf.py
	$(PY) -m ruff format --check costroute tests benchmarks examples docs/conf.py

clean:
	rm -rf $(VENV) build *.egg-info docs/_build docs/generated
