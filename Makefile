# dunning: every command a developer or CI needs. Only Python 3.11+, make and git are assumed;
# each target creates the virtual environments it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
# What `make demo` installs, the runtime dependencies and the local tooling (`dunning[local]`), and not the dev
# extra: `make smoke` proves `make demo` needs nothing else.
RUNTIME_VENV := .venv-runtime
SMOKE_OUT := .smoke-out
export AWS_DEFAULT_REGION ?= eu-west-1
export AWS_ACCESS_KEY_ID ?= testing
export AWS_SECRET_ACCESS_KEY ?= testing
export SAM_CLI_TELEMETRY := 0
OUT ?= dunning-out

.PHONY: demo test lint typecheck unit infra smoke bench clean build deploy

# The package with the local tooling (`dunning simulate` runs moto in-process): what `make demo` needs.
$(BIN)/.runtime: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "dunning needs Python 3.11 or newer (PYTHON=$(PYTHON))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[local]'
	touch $@

$(BIN)/.dev: $(BIN)/.runtime pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(RUNTIME_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(RUNTIME_VENV)
	$(RUNTIME_VENV)/bin/pip install --quiet --upgrade pip
	$(RUNTIME_VENV)/bin/pip install --quiet -e '.[local]'
	touch $@

$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli==1.170.0
	touch $@

$(CHECKOV_VENV)/.installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet checkov==3.3.30
	touch $@

demo: $(BIN)/.runtime
	$(BIN)/dunning simulate --invoices examples/invoices.csv --invoices examples/xero_export.csv \
		--payments examples/payments.csv --actions examples/actions.csv --start 2026-11-20 --days 120 \
		--policy examples/policy-collector.yaml --out $(OUT)

lint: $(BIN)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(BIN)/.dev
	$(BIN)/mypy

unit: $(BIN)/.dev
	$(BIN)/pytest -q -n auto --dist loadgroup

infra: $(BIN)/.dev $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed
	$(BIN)/cfn-lint infra/template.yaml
	$(SAM_VENV)/bin/sam validate --lint --template infra/template.yaml
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation -f infra/template.yaml
	# The Lambda runtime is python3.12: `sam build` needs that interpreter (pyenv's, where present).
	PYENV_VERSION=3.12.1 bash infra/build-check.sh $(SAM_VENV)/bin/sam

# `dunning simulate` from an environment with only what `make demo` installs (the runtime dependencies and the
# local extra): a dependency that only the dev extra brings in fails here (a few days of examples/, then the
# outputs).
smoke: $(RUNTIME_VENV)/.installed
	rm -rf $(SMOKE_OUT)
	$(RUNTIME_VENV)/bin/dunning simulate --invoices examples/invoices.csv --invoices examples/xero_export.csv \
		--payments examples/payments.csv --actions examples/actions.csv --start 2026-11-20 --days 5 \
		--quiet --out $(SMOKE_OUT) > /dev/null
	test -s $(SMOKE_OUT)/events.jsonl && test -s $(SMOKE_OUT)/report.html
	@echo "smoke: dunning simulate runs on the runtime dependencies and the local extra alone"

test: lint typecheck unit infra smoke

# `sam build` for Lambda's runtime, python3.12: with this machine's python3.12 when it has one (pyenv's is
# found through PYENV_VERSION, 3.12.1 unless you set it), otherwise inside AWS's build image, which needs Docker.
SAM := $(SAM_VENV)/bin/sam
build: $(SAM_VENV)/.installed
	@if python3.12 -c '' 2>/dev/null; then \
		echo "build: python3.12 found ($$(python3.12 -c 'import sys; print(sys.executable)')): sam build"; \
		$(SAM) build; \
	elif PYENV_VERSION=$${PYENV_VERSION:-3.12.1} python3.12 -c '' 2>/dev/null; then \
		echo "build: pyenv's python3.12 (PYENV_VERSION=$${PYENV_VERSION:-3.12.1}): sam build"; \
		PYENV_VERSION=$${PYENV_VERSION:-3.12.1} $(SAM) build; \
	else \
		echo "build: NO python3.12 on this machine (Lambda's runtime): building inside the SAM build container."; \
		echo "build: this needs Docker running (or install Python 3.12 and run make build again)."; \
		command -v docker >/dev/null 2>&1 || { echo "build: docker not found: install Docker or Python 3.12" >&2; exit 1; }; \
		$(SAM) build --use-container; \
	fi

# Builds, then deploys with your own AWS credentials (profile or environment), asking for every parameter the
# first time (answers are saved in samconfig.toml). The fake credentials this Makefile sets for the tests are
# removed from the environment first, unless they came from your environment.
DEPLOY_UNSET := $(foreach var,AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION,$(if $(filter file,$(origin $(var))),-u $(var)))
deploy: build
	env $(DEPLOY_UNSET) $(SAM) deploy --guided

bench: $(BIN)/.dev
	$(BIN)/python -m bench.ingest_memory $(if $(BENCH_QUICK),--quick,)
	$(BIN)/python -m bench.scan_simulate $(if $(BENCH_QUICK),--quick,)
	$(BIN)/python -m bench.property_timelines $(if $(BENCH_QUICK),--quick,)
	$(BIN)/python -m bench.ingest_fuzz $(if $(BENCH_QUICK),--files 1000,)
	$(BIN)/python -m bench.fault_matrix $(if $(BENCH_QUICK),--quick,)
	$(BIN)/python -m bench.handler_imports $(if $(BENCH_QUICK),--quick,)
	$(BIN)/python -m bench.scale $(if $(BENCH_QUICK),--quick,)

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) $(RUNTIME_VENV) $(SMOKE_OUT) .aws-sam .mypy_cache .pytest_cache .ruff_cache $(OUT)
