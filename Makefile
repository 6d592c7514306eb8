# Quick start:  make run   (install and serve on http://127.0.0.1:8000 with the embedded SQLite store)
#               make test  (install the test tools and run lint, type check and the whole suite)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest test-slow test-image image-base bench bench-query bench-dashboard clean tracker map \
	screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

RUN_STAMP := $(VENV)/.installed-run

# Running needs the package and its dependencies only; the test tools come with `make test`.
$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	touch $(RUN_STAMP)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

run: $(RUN_STAMP)
	$(BIN)/analytics serve

lint: $(STAMP)
	$(BIN)/ruff check analytics tests bench

typecheck: $(STAMP)
	$(BIN)/mypy analytics

pytest: $(STAMP) tools/node_modules/.bin/terser /usr/bin/chromium
	$(BIN)/pytest -m "not slow and not image"

# The browser tests drive Debian's Chromium (Playwright's own browser download is not used).
/usr/bin/chromium:
	apt-get update -qq && apt-get install -y -qq chromium

test: lint typecheck pytest

test-slow: $(STAMP) tools/node_modules/.bin/terser /usr/bin/chromium
	$(BIN)/pytest -m slow

# The container image: built from the Dockerfile and run with podman (tests/test_image.py). Needs podman (and
# runc); where no registry can be reached, image-base makes the base image with debootstrap (as root).
image-base test-image: export CONTAINERS_CONF ?= $(CURDIR)/tools/image/containers.conf
image-base:
	tools/image/base.sh

test-image: $(STAMP) image-base
	$(BIN)/pytest -m image -s tests/test_image.py

bench: $(STAMP)
	@command -v wrk >/dev/null || { echo "bench needs wrk: apt-get install wrk"; exit 1; }
	$(BIN)/python bench/ingest.py

bench-query: $(STAMP)
	$(BIN)/python bench/query.py

bench-dashboard: $(STAMP) /usr/bin/chromium
	$(BIN)/python bench/dashboard.py --keep bench/results/query

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# The minified scripts served at /tracker.js and /optout.js (the opt-out switch), rebuilt from tracker.js and
# optout.js (needs Node.js; the results are committed).
TERSER_OPTIONS := --ecma 2020 --compress passes=3,unsafe=true,unsafe_arrows=true --mangle --toplevel
tools/node_modules/.bin/terser: tools/package.json tools/package-lock.json
	npm ci --prefix tools --no-audit --no-fund --silent

tracker: tools/node_modules/.bin/terser
	tools/node_modules/.bin/terser tracker.js $(TERSER_OPTIONS) -o analytics/static/tracker.min.js
	tools/node_modules/.bin/terser optout.js $(TERSER_OPTIONS) -o analytics/static/optout.min.js

# The dashboard's world map (analytics/static/dashboard/world.js), rebuilt from Natural Earth data (needs Node.js;
# the result is committed).
map:
	npm install --prefix tools/map --no-audit --no-fund --silent
	node tools/map/build.mjs

# The README's screenshots (docs/screenshots/), taken in Chromium on generated data.
screenshots: $(STAMP) /usr/bin/chromium
	$(BIN)/python tools/screenshots.py
