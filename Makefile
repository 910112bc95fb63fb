# Two commands on a fresh machine with Python >= 3.10:
#   make demo   installs dotevals in .venv, runs an example evaluation end to end and
#               writes its report to demo-report.html
#   make test   installs dotevals with its dev tools in .venv and runs the tests
#               (make test-quick: the in-process tests of tests/unit alone, in seconds)
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

.PHONY: install demo test test-quick test-full test-oldest lint format bench clean

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

lint: $(INSTALLED)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy src

format: $(INSTALLED)
	$(BIN)/ruff check --fix src tests bench examples
	$(BIN)/ruff format src tests bench examples

bench: $(INSTALLED)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .venv-pytest-* .dotevals .dotevals-demo demo-report.html build dist src/*.egg-info
