# Entry points. Every prerequisite is installed on first use:
# Python tools into .venv (pinned in requirements.txt), the arm64 Rust target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VENV_STAMP := $(VENV)/.installed-$(shell cksum < requirements.txt | cut -d' ' -f1)
# The SAM CLI and checkov pin boto3 differently from each other and from
# moto: each gets its own venv.
SAM_VENV := .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed-$(shell cksum < requirements-sam.txt | cut -d' ' -f1)
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(shell cksum < requirements-checkov.txt | cut -d' ' -f1)
export SAM_CLI_TELEMETRY := 0
# Offline validation needs a region, never credentials.
IAC_REGION ?= eu-west-1
ARM64 := aarch64-unknown-linux-gnu
# Task binaries: one crate per folder under tasks/.
TASKS := $(notdir $(wildcard tasks/*))
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help demo up logs test test-fast load fuzz lint lint-rust lint-iac fmt build deploy bench venv system-deps arm64-target clean

help:
	@echo "make demo   run the local workflow demo (no Docker, no AWS account)"
	@echo "make up     keep the local stack running on 127.0.0.1:4566"
	@echo "make logs ID=<correlation id>   every log line of one correlation ID"
	@echo "make test   run every test (unit, runtime harness, Sentry transport, local stack)"
	@echo "make load   many more concurrent workflows than make test runs (LOAD_EXECUTIONS=1000)"
	@echo "make test-fast  unit and harness tests only (no moto), about a minute"
	@echo "make fuzz   fuzz each target for FUZZ_SECONDS (600) on top of the committed corpus"
	@echo "make lint   rustfmt, clippy -D warnings, sam validate --lint, cfn-lint, checkov"
	@echo "make build  release arm64 Lambda artifacts (sam build, via cargo-lambda)"
	@echo "make deploy sam deploy (guided the first time)"
	@echo "make bench  benchmarks"

# The local stack: template.yaml's state machines in moto's Step Functions
# engine against the real task binaries (debug builds: quick to build).
DEVSTACK := target/debug/devstack

demo: $(VENV_STAMP)
	cargo build --workspace --bins --locked
	$(DEVSTACK) demo

# Keeps the stack running on 127.0.0.1:4566 until Ctrl-C, for the AWS CLI.
up: $(VENV_STAMP)
	cargo build --workspace --bins --locked
	$(DEVSTACK) up

# Every log line of one correlation ID: `make logs ID=order-B-2002`. Reads a
# running stack's CloudWatch Logs with ENDPOINT=http://127.0.0.1:4566, else
# the last run's local log streams.
logs:
	@test -n "$(ID)" || { echo "usage: make logs ID=<correlation id> [ENDPOINT=http://127.0.0.1:4566]"; exit 2; }
	cargo build --locked -q -p devstack
	$(DEVSTACK) logs "$(ID)" $(if $(ENDPOINT),--endpoint $(ENDPOINT))

# The Python half of the local stack (devstack/moto): its own unit tests.
MOTO_UNIT_TESTS = cd devstack/moto && $(CURDIR)/$(VENV)/bin/python -m unittest discover -s tests

# End-to-end tests run the task binaries as processes, so build them first.
# Every line the tasks log during the suite is kept in $(SUITE_LOGS) and
# scanned afterwards for e-mail addresses, tax ids and the Sentry DSN.
SUITE_LOGS := $(CURDIR)/target/suite-logs
# The SAM venv: the IAM review also checks the roles SAM's transform creates.
test: $(VENV_STAMP) $(SAM_STAMP) system-deps
	cargo build --workspace --bins --locked
	rm -rf $(SUITE_LOGS)
	SUITE_LOG_DIR=$(SUITE_LOGS) MOTO_SERVER=$(CURDIR)/$(VENV)/bin/moto_server \
	  SAM_PYTHON=$(CURDIR)/$(SAM_VENV)/bin/python \
	  cargo test --workspace --locked
	# common built without Sentry, as a task that does not report gets it.
	cargo test -p sfn-task --no-default-features --locked --lib
	$(MOTO_UNIT_TESTS)
	target/debug/scan-logs $(SUITE_LOGS) events

# The quick loop: unit tests of every crate, the runtime harness, Sentry's
# transport, the PDF checks and the Python unit tests of devstack/moto. No
# moto server, no local stack.
test-fast: $(VENV_STAMP) system-deps
	cargo build --locked -p tests --bin fixture-task
	cargo test --workspace --locked --lib
	cargo test -p sfn-task --no-default-features --locked --lib
	cargo test --locked -p tests --test runtime_harness --test sentry_transport
	cargo test --locked -p invoice --test render
	$(MOTO_UNIT_TESTS)

# The fuzz targets under libFuzzer with sanitizers, FUZZ_SECONDS per target
# (`scripts/fuzz.sh smoke` for 20 s each). `make test` checks the same
# properties in the normal build: fuzz-checks/tests/replay.rs replays the
# committed corpus and generated inputs, without a second dependency build.
FUZZ_SECONDS ?= 600
fuzz:
	scripts/fuzz.sh long $(FUZZ_SECONDS)

# The long load run: `make test` runs 200 concurrent workflows, this many
# more; the report lands in target/load-report.md.
LOAD_EXECUTIONS ?= 1000
load: $(VENV_STAMP)
	cargo build --workspace --bins --locked
	LOAD_EXECUTIONS=$(LOAD_EXECUTIONS) MOTO_SERVER=$(CURDIR)/$(VENV)/bin/moto_server \
	  cargo test --locked -p tests --test load -- --nocapture
	@cat target/load-report.md

lint: lint-rust lint-iac

lint-rust:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	# common without its default `sentry` feature, as a task that does not report builds it.
	cargo clippy -p sfn-task --all-targets --no-default-features --locked -- -D warnings

# The template and state machines, offline: SAM's own lint, cfn-lint, checkov
# (every skip is inline in template.yaml with its reason). The cross-file ASL
# checks cfn-lint cannot make run in `make test` (tests/tests/template.rs).
lint-iac: $(SAM_STAMP) $(CHECKOV_STAMP)
	$(SAM_VENV)/bin/sam validate --lint --template template.yaml --region $(IAC_REGION)
	$(SAM_VENV)/bin/cfn-lint template.yaml
	$(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation --skip-download --quiet --compact

fmt:
	cargo fmt --all

$(VENV_STAMP): requirements.txt
	@echo "Installing the Python tools pinned in requirements.txt (moto, the AWS CLI) into $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

$(SAM_STAMP): requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-sam.txt
	rm -f $(SAM_VENV)/.installed-*
	touch $@

$(CHECKOV_STAMP): requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	rm -f $(CHECKOV_VENV)/.installed-*
	touch $@

venv: $(VENV_STAMP)

# PDF tools the invoice tests check output with; curl and GNU time for benches;
# Chromium and ChromeDriver for the console's browser test and the PDF bench.
SYSTEM_TOOLS := qpdf pdftotext pdffonts curl /usr/bin/time chromium chromedriver openssl
system-deps:
	@missing=""; for t in $(SYSTEM_TOOLS); do command -v $$t >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "Installing qpdf, poppler-utils, curl, time, openssl, chromium and chromium-driver from Debian: $$SUDO apt-get install (the PDF checks, benches and the console's browser test use them; openssl makes the first-call bench's test CA)"; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq qpdf poppler-utils curl time openssl chromium chromium-driver >/dev/null; \
	fi

arm64-target:
	@rustup target list --installed | grep -qx $(ARM64) || rustup target add $(ARM64)

# `sam build` runs `cargo lambda build --release --arm64 --bin <task>` for every
# function (cargo-lambda and zig come with the SAM venv), one shared target/.
build: $(SAM_STAMP) arm64-target
	PATH=$(CURDIR)/$(SAM_VENV)/bin:$$PATH $(SAM_VENV)/bin/sam build
	@ls -l .aws-sam/build/*/bootstrap

# Deploys with samconfig.toml; guided (asks for parameters, saves them) the
# first time, when the stack does not exist yet.
deploy: build $(VENV_STAMP)
	@if $(VENV)/bin/aws cloudformation describe-stacks --stack-name $${STACK_NAME:-sfn-tasks} >/dev/null 2>&1; then \
	  $(SAM_VENV)/bin/sam deploy --stack-name $${STACK_NAME:-sfn-tasks}; \
	else \
	  $(SAM_VENV)/bin/sam deploy --guided --stack-name $${STACK_NAME:-sfn-tasks}; \
	fi

# The Python side-by-side of the runtime benchmarks (Powertools' Logger under
# a stdlib Runtime API loop), in its own venv.
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed-$(shell cksum < bench/powertools/requirements.txt | cut -d' ' -f1)
BENCH_OUT := target/bench

$(BENCH_STAMP): bench/powertools/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -r bench/powertools/requirements.txt
	rm -f $(BENCH_VENV)/.installed-*
	touch $@

# Numbers, never assertions: every step writes a fragment into target/bench,
# and BENCHMARKS.md is assembled from them. Chromium is the side-by-side
# baseline for PDFs, `aws s3 cp` for backups, a bare lambda_runtime echo and
# Python Powertools for the runtime.
bench: build system-deps $(VENV_STAMP) $(BENCH_STAMP)
	@mkdir -p $(BENCH_OUT) && cut -d' ' -f1 /proc/loadavg > $(BENCH_OUT)/load-before
	CRITERION_HOME=$(CURDIR)/target/criterion cargo bench --locked -p sfn-task --bench envelope -p invoice 2>&1 | tee $(BENCH_OUT)/criterion-full.txt
	grep -E '^ +time:' -B1 $(BENCH_OUT)/criterion-full.txt | grep -v '^--' > $(BENCH_OUT)/criterion.txt || true
	# The pipeline's JSON lines go to stdout: stdout is the sink here.
	CRITERION_HOME=$(CURDIR)/target/criterion AWS_LAMBDA_LOG_FORMAT=JSON \
	  cargo bench --locked -p sfn-task --bench invocation > /dev/null
	cd bench/powertools && ../../$(BENCH_VENV)/bin/python inprocess.py > ../../$(BENCH_OUT)/powertools-inprocess.txt
	$(PYTHON) scripts/bench_inprocess.py target/criterion $(BENCH_OUT)/powertools-inprocess.txt > $(BENCH_OUT)/inprocess.md
	# What is measured, built as it ships; the tools that measure it, quicker.
	cargo build --release --locked -p invoice -p notify -p backup -p echoes --bins
	cargo build --release --locked -p bench --bin first-call-bare
	cargo build --profile tools --locked -p bench -p tests --bins
	$(PYTHON) scripts/bench_invoice.py target/release/render-invoice chromium .aws-sam/build/InvoiceFunction/bootstrap | tee $(BENCH_OUT)/invoice.txt
	MOTO_SERVER=$(CURDIR)/$(VENV)/bin/moto_server target/tools/bench-backup target/release/backup $(CURDIR)/$(VENV)/bin/aws | tee $(BENCH_OUT)/backup.txt
	MOTO_SERVER=$(CURDIR)/$(VENV)/bin/moto_server target/tools/runtime-bench $(BENCH_OUT) target/release $(BENCH_VENV)/bin/python
	MOTO_SERVER=$(CURDIR)/$(VENV)/bin/moto_server target/tools/first-call-bench $(BENCH_OUT) target/release
	MOTO_SERVER=$(CURDIR)/$(VENV)/bin/moto_server target/tools/workflow-bench $(BENCH_OUT) target/release
	MOTO_SERVER=$(CURDIR)/$(VENV)/bin/moto_server target/tools/backup-scale-bench $(BENCH_OUT) target/release
	# Each alone, so that no other package's features reach what they link.
	PATH=$(CURDIR)/$(SAM_VENV)/bin:$$PATH cargo lambda build --release --arm64 --locked -p echoes --bin echo-bare --bin echo-common
	PATH=$(CURDIR)/$(SAM_VENV)/bin:$$PATH cargo lambda build --release --arm64 --locked -p echo-without-sentry
	$(PYTHON) scripts/bench_sizes.py \
	  $(foreach t,$(TASKS),$(t)=.aws-sam/build/$(shell echo $(t) | sed 's/./\U&/')Function/bootstrap) \
	  echo-bare=target/lambda/echo-bare/bootstrap echo-common=target/lambda/echo-common/bootstrap \
	  echo-common-without-sentry=target/lambda/echo-common-without-sentry/bootstrap \
	  > $(BENCH_OUT)/sizes.md
	$(PYTHON) scripts/bench_report.py $(BENCH_OUT) "$$(cat $(BENCH_OUT)/load-before)" "$$(cut -d' ' -f1 /proc/loadavg)" > BENCHMARKS.md
	@echo "wrote BENCHMARKS.md"

clean:
	cargo clean
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) $(BENCH_VENV) .aws-sam
