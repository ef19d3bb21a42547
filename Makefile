# Two entry points for a fresh machine: `make up` (start the service) and `make test`.
# Both install what they need first; re-running them skips what is already installed.

VENV := .venv
BIN := $(VENV)/bin
# The example env plugin (README: Your own environments); the tests use its env.
EXAMPLE_ENVS := examples/rlserve-example-envs
FRONTEND_SOURCES := $(shell find frontend/src frontend/index.html frontend/package.json frontend/vite.config.ts -type f 2>/dev/null)

.PHONY: install up test lint bench

install: $(VENV)/.installed frontend/dist/index.html

# torch first, from the pinned version: anything else would pull gigabytes of CUDA wheels.
$(VENV)/.installed: pyproject.toml constraints.txt $(EXAMPLE_ENVS)/pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	$(BIN)/python -m pip install -q -c constraints.txt -e $(EXAMPLE_ENVS)
	$(BIN)/rlserve build-kernels
	touch $@

frontend/dist/index.html: frontend/package-lock.json $(FRONTEND_SOURCES)
	cd frontend && npm ci --no-audit --no-fund && npm run build

/usr/bin/chromium:
	apt-get update -q && apt-get install -y -q chromium

# The compiled kernels (rlcore/compiled.py); without them training runs slower Python code.
/usr/bin/g++:
	apt-get update -q && apt-get install -y -q g++

up: install
	$(BIN)/rlserve up

test: /usr/bin/g++ install /usr/bin/chromium
	$(BIN)/python -m pytest -q --durations=15

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: install
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[bench]'
	$(BIN)/python bench/train_speed.py
