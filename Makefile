# Guardrail: the two commands are `make demo` (main job) and `make test`.
PY ?= python3
VENV := .venv
SAMVENV := .venv-sam
UV := $(VENV)/bin/uv
PYBIN := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-8)

.PHONY: demo test test-slow test-fast bench lint typecheck validate build clean venv sam-venv models aws-smoke

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
	PATH=$(CURDIR)/$(SAMVENV)/bin:$$PATH $(VENV)/bin/pytest -n 2 --dist loadfile -m "not slow"  # xdist 3.8 loadgroup is a no-op under pytest 9 (nodeid is read-only)

# The longest end-to-end suites (~40 min on 2 cores): the fault matrix, upload order, the evidence scenarios, demo
# subsets, rolling scenarios, the slower approval/abort cases, the shadow promotion e2e and the aws-smoke run on the
# local cloud. Kept out of `make test` so CI stays under its 20-minute budget.
test-slow: venv sam-venv
	PATH=$(CURDIR)/$(SAMVENV)/bin:$$PATH $(VENV)/bin/pytest -n 2 --dist loadfile -m slow

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

# Called by `sam build` for template.yaml's PinnedDepsLayer (every function's only dependency layer): the exact
# pydantic and Powertools versions pyproject.toml pins (what the tests ran), for python3.13 x86_64, binary
# wheels only (no Docker); boto3/botocore at their pins too (aws-xray-sdk pulls botocore) (audit row 23).
build-PinnedDepsLayer:
	rm -rf "$(ARTIFACTS_DIR)/python" && mkdir -p "$(ARTIFACTS_DIR)"
	"$(CURDIR)/$(PYBIN)" scripts/lambda_requirements.py > "$(ARTIFACTS_DIR)/requirements.txt"
	"$(CURDIR)/$(PYBIN)" -m pip install --quiet --disable-pip-version-check --no-compile --only-binary=:all: \
		--implementation cp --python-version 3.13 --platform manylinux2014_x86_64 \
		--target "$(ARTIFACTS_DIR)/python" -r "$(ARTIFACTS_DIR)/requirements.txt"
	find "$(ARTIFACTS_DIR)/python" -depth -type d \( -name tests -o -name __pycache__ \) -exec rm -rf {} +
	rm -rf "$(ARTIFACTS_DIR)/python/bin" "$(ARTIFACTS_DIR)/requirements.txt"

# Called by `sam build` for template.yaml's XgboostLayer (BuildMethod: makefile): pre-flight's xgboost for the
# python3.13 x86_64 runtime, without Docker: binary wheels only, pinned in layers/xgboost/requirements.txt, for
# Amazon Linux 2023's glibc 2.34: manylinux_2_28 (pip also accepts the older manylinux_2_x/2014 tags below it, but
# prefers 2_28: xgboost's manylinux2014 wheel is a reduced build that warns at import). Test folders are dropped;
# the size check keeps room under Lambda's 250 MB (262144000 bytes) unzipped for the function + ALL its layers.
LAYER_MAX_BYTES ?= 200000000
build-XgboostLayer:
	rm -rf "$(ARTIFACTS_DIR)/python" && mkdir -p "$(ARTIFACTS_DIR)"
	"$(CURDIR)/$(PYBIN)" -m pip install --quiet --disable-pip-version-check --no-compile --only-binary=:all: \
		--implementation cp --python-version 3.13 --platform manylinux_2_28_x86_64 \
		--target "$(ARTIFACTS_DIR)/python" -r layers/xgboost/requirements.txt
	find "$(ARTIFACTS_DIR)/python" -depth -type d \( -name tests -o -name __pycache__ \) -exec rm -rf {} +
	rm -rf "$(ARTIFACTS_DIR)/python/bin"
	@size=$$(du -sb "$(ARTIFACTS_DIR)" | cut -f1); echo "XgboostLayer: $$size bytes unzipped (limit $(LAYER_MAX_BYTES))"; \
		test "$$size" -le "$(LAYER_MAX_BYTES)"

# Deploys a throwaway stack into the caller's AWS account (samconfig [smoke]), runs first deployment, a guarded
# update, a rollback and a shadow test on ml.t2.medium, prints each outcome and the estimated cost, tears it all
# down. `make aws-smoke SMOKE_ARGS=--local` runs the same on a local cloud of its own (endpoint guardrail-smoke).
aws-smoke: venv sam-venv
	$(PYBIN) -m guardrail.aws_smoke $(SMOKE_ARGS)

clean:
	rm -rf .aws-sam .guardrail .pytest_cache
