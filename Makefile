# The two commands of the README. Both create .venv on a fresh machine and install what they need.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run test install install-test

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'

# A fresh checkout gets its own random control token (the ops CLI reads it from here too).
.env.local:
	umask 077; printf 'CONTROL_API_TOKEN=%s\n' "$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(32))')" > .env.local
	@echo "wrote a new CONTROL_API_TOKEN to .env.local"

## Install and start the runtime on the shipped replay data, with every shipped agent registered and trading.
run: install .env.local
	ONLYTRADE_SEED_AGENTS=$${ONLYTRADE_SEED_AGENTS:-all} HOST=$(HOST) PORT=$(PORT) $(BIN)/onlytrade-runtime

## Install the test extras and run the whole suite.
test: install-test
	$(BIN)/python -m pytest
