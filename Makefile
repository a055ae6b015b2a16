# The two commands of the README. Both create .venv on a fresh machine and install what they need.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run test install install-test browser proxy-deps

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# BUILD_COMMIT: the commit /health reports when the install has no readable .git (see observability/build_info.py).
install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	-git rev-parse HEAD > runtime_api/BUILD_COMMIT 2>/dev/null || rm -f runtime_api/BUILD_COMMIT

install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	-git rev-parse HEAD > runtime_api/BUILD_COMMIT 2>/dev/null || rm -f runtime_api/BUILD_COMMIT

# A fresh checkout gets its own random control token (the ops CLI reads it from here too).
.env.local:
	umask 077; printf 'CONTROL_API_TOKEN=%s\n' "$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(32))')" > .env.local
	@echo "wrote a new CONTROL_API_TOKEN to .env.local"

## Install and start the runtime on the shipped replay data, with every shipped agent registered and trading.
run: install .env.local
	ONLYTRADE_SEED_AGENTS=$${ONLYTRADE_SEED_AGENTS:-all} AGENT_FLAT_ENTRY_ENABLED=$${AGENT_FLAT_ENTRY_ENABLED:-true} \
	  HOST=$(HOST) PORT=$(PORT) $(BIN)/onlytrade-runtime

# The browser tests drive Debian's chromium; install it when we can (root), else they skip and say so.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null) ; } || \
	  echo "chromium not installable here: browser tests will be skipped"

# The nginx and viewer-bus tests run Debian's nginx and redis-server (unprivileged, temp prefix);
# install them when we can (root), else those tests skip and say so.
proxy-deps:
	@{ command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; } && command -v redis-server >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx redis-server >/dev/null) ; } || \
	  echo "nginx/redis-server not installable here: nginx and viewer-bus tests will be skipped"

## Install the test extras and run the whole suite.
test: install-test browser proxy-deps
	$(BIN)/python -m pytest
