# The one task runner. `make run` and `make test` are all a newcomer needs.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test lint fmt bench migrate clean

install:
	@scripts/ensure-venv

run: install
	@LOG_FORMAT=$${LOG_FORMAT:-console} $(BIN)/python -m devstack

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

migrate: install
	$(BIN)/python -m db migrate

clean:
	rm -rf .data .pytest_cache .mypy_cache .ruff_cache
