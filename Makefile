# Guardrail: the two commands are `make demo` (main job) and `make test`.
PY ?= python3
VENV := .venv
SAMVENV := .venv-sam
UV := $(VENV)/bin/uv
PYBIN := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-8)

.PHONY: demo test test-fast bench lint typecheck validate build clean venv sam-venv models

$(STAMP): pyproject.toml
	test -x $(PYBIN) || $(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q uv==0.13.8
	$(UV) pip install -q --python $(PYBIN) -e '.[training,local,dev,sagemaker]'
	rm -f $(VENV)/.installed-*; touch $@

venv: $(STAMP)

$(SAMVENV)/bin/sam: | $(STAMP)
	test -x $(SAMVENV)/bin/python || $(PY) -m venv $(SAMVENV)
	$(UV) pip install -q --python $(SAMVENV)/bin/python aws-sam-cli==1.170.0

sam-venv: $(SAMVENV)/bin/sam

models: venv
	$(VENV)/bin/guardrail train --out artifacts/models --reuse

demo: venv
	$(VENV)/bin/guardrail demo

test: venv sam-venv
	$(VENV)/bin/ruff check .
	PATH=$(CURDIR)/$(SAMVENV)/bin:$$PATH $(VENV)/bin/pytest -n 2 --dist loadfile  # xdist 3.8 loadgroup is a no-op under pytest 9 (nodeid is read-only)

test-fast: venv
	$(VENV)/bin/pytest -n 2 -m "not e2e and not browser and not sam"

bench: venv
	$(PYBIN) bench/run_all.py

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

validate: sam-venv
	$(SAMVENV)/bin/sam validate --lint --template template.yaml --region us-east-1

build: sam-venv
	$(SAMVENV)/bin/sam build --template template.yaml

# Called by `sam build --build-in-source` (Metadata BuildMethod: makefile) once per function: every function
# ships the one importable `functions` package (handlers are functions.handlers.<step>.handler).
build-%Function:
	mkdir -p "$(ARTIFACTS_DIR)"
	tar -c --exclude=__pycache__ --exclude=tests --exclude='*.pyc' functions | tar -x -C "$(ARTIFACTS_DIR)"

clean:
	rm -rf .aws-sam .guardrail .pytest_cache
