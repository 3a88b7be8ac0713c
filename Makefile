# curate: the two set-up commands are `make quickstart` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install llm quickstart test test-fast bench chaos model label-studio label-studio-env browser clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## The embedded model: fetch and verify the weights (1.1 GB), find or build llama.cpp's llama-server
## (~6 min on 2 cores, once). Both are cached in CURATE_CACHE_DIR (default ~/.cache/curate).
llm: install
	$(BIN)/curate llm prepare

## Offline demo: install, then run every stage on the bundled sample into runs/quickstart. Synthesis uses the
## embedded model (started and stopped by the run) unless OPENAI_BASE_URL points elsewhere.
quickstart: install
	$(BIN)/curate run pipelines/quickstart.yaml

## Whole test suite, with the servers it needs (Label Studio in its own venv, headless Chromium).
test: install label-studio-env browser llm
	$(BIN)/python -m pytest

## The suite without the slow integration servers.
test-fast: install
	$(BIN)/python -m pytest -m "not label_studio and not browser and not embedded_llm"

## Label Studio lives in its own virtual environment: it pins openai<2 and pyarrow<25 (see docs).
label-studio-env: install
	$(BIN)/python -m tests.servers.label_studio install

## Start a local Label Studio for reviewers (data in ./.label-studio).
label-studio: label-studio-env
	$(BIN)/python -m tests.servers.label_studio serve

## Debian's Chromium (and CJK fonts, so Chinese renders in screenshots) for the browser tests.
browser:
	@(command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi "noto sans cjk") || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null)

bench: install
	$(BIN)/python benchmarks/run_all.py

chaos: install label-studio-env
	$(BIN)/python benchmarks/chaos.py

model: install
	$(BIN)/python benchmarks/train_default_model.py

clean:
	rm -rf runs .pytest_cache test-artifacts
