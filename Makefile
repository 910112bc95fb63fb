# Two commands on a fresh machine with Python >= 3.10:
#   make demo   installs dotevals in .venv and runs an example evaluation end to end
#   make test   installs dotevals with its dev tools in .venv and runs the tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
DEMO_STORAGE := json://.dotevals-demo

.PHONY: install demo test lint format bench clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(INSTALLED)

install: $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/pytest examples/eval_arithmetic.py -p no:cacheprovider --no-progress \
		--experiment demo --storage $(DEMO_STORAGE)
	$(BIN)/dotevals show demo --storage $(DEMO_STORAGE)

test: $(INSTALLED)
	$(BIN)/pytest -n 2 -q

lint: $(INSTALLED)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

format: $(INSTALLED)
	$(BIN)/ruff check --fix src tests bench examples
	$(BIN)/ruff format src tests bench examples

bench: $(INSTALLED)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .dotevals .dotevals-demo build dist src/*.egg-info
