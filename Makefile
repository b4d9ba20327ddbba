# paygrid: `make run` serves the API with a demo merchant and store (it prints their
# addresses and keys); `make test` runs the suite. See docs/cli.md and docs/testing.md.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml uv.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync --quiet --frozen --inexact --all-extras
	touch $(STAMP)

run: $(STAMP)
	@$(BIN)/paygrid serve --demo

test: $(STAMP)
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src tests bench
	$(BIN)/lint-imports
	# Kubernetes manifests: rendered with kubectl kustomize, every object validated.
	$(BIN)/python -m tests.deploy.kubernetes_manifests
	# The Dockerfiles (hadolint) and compose.yaml (Compose's parser, then paygrid's rules).
	$(BIN)/hadolint Dockerfile deploy/compose/pgbouncer/Dockerfile
	$(BIN)/python -m tests.deploy.compose_rules

bench: $(STAMP)
	$(BIN)/python bench/payments.py
	$(BIN)/python bench/webhooks.py --workers 1,2

# The demo's database and keys live in the per-user data directory (`paygrid serve` prints
# it), not here: clean leaves them alone.
clean:
	rm -rf $(VENV) .paygrid .pytest_cache .mypy_cache .import_linter_cache
