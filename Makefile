# dunning: every command a developer or CI needs. Only Python 3.11+, make and git are assumed;
# each target creates the virtual environments it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
export AWS_DEFAULT_REGION ?= eu-west-1
export AWS_ACCESS_KEY_ID ?= testing
export AWS_SECRET_ACCESS_KEY ?= testing
export SAM_CLI_TELEMETRY := 0
OUT ?= dunning-out

.PHONY: demo test lint typecheck unit infra bench clean

$(BIN)/.runtime: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "dunning needs Python 3.11 or newer (PYTHON=$(PYTHON))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(BIN)/.dev: $(BIN)/.runtime pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
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
		--out $(OUT)

lint: $(BIN)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.dev
	$(BIN)/mypy

unit: $(BIN)/.dev
	$(BIN)/pytest -q

infra: $(BIN)/.dev $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed
	$(BIN)/cfn-lint infra/template.yaml
	$(SAM_VENV)/bin/sam validate --lint --template infra/template.yaml
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation -f infra/template.yaml
	# The Lambda runtime is python3.12: `sam build` needs that interpreter (pyenv's, where present).
	PYENV_VERSION=3.12.1 bash infra/build-check.sh $(SAM_VENV)/bin/sam

test: lint typecheck unit infra

bench: $(BIN)/.dev
	$(BIN)/python -m bench.ingest_memory $(if $(BENCH_QUICK),--quick,)
	$(BIN)/python -m bench.scan_simulate $(if $(BENCH_QUICK),--quick,)

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .aws-sam .mypy_cache .pytest_cache .ruff_cache $(OUT)
