# Entry points. Every prerequisite is installed on first use:
# Python tools into .venv (pinned in requirements.txt), the arm64 Rust target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VENV_STAMP := $(VENV)/.installed-$(shell cksum < requirements.txt | cut -d' ' -f1)
ARM64 := aarch64-unknown-linux-gnu
# Task binaries: one crate per folder under tasks/.
TASKS := $(notdir $(wildcard tasks/*))
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help demo test lint fmt build bench venv system-deps arm64-target clean

help:
	@echo "make demo   run the local workflow demo"
	@echo "make test   run every test (unit, runtime harness, Sentry transport)"
	@echo "make lint   rustfmt check and clippy -D warnings"
	@echo "make build  release arm64 Lambda artifacts with cargo-lambda"
	@echo "make bench  benchmarks"

demo:
	@echo "The local workflow demo (state machines from template.yaml against the real"
	@echo "task binaries, with S3, SQS, Step Functions and CloudWatch Logs emulated here)"
	@echo "arrives with the local-stack issue (#7). Until then, 'make test' runs the task"
	@echo "runtime end to end against a local Lambda Runtime API and a local Sentry endpoint."

# End-to-end tests run the task binaries as processes, so build them first.
test: $(VENV_STAMP) system-deps
	cargo build --workspace --bins --locked
	MOTO_SERVER=$(CURDIR)/$(VENV)/bin/moto_server cargo test --workspace --locked

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

fmt:
	cargo fmt --all

$(VENV_STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(VENV_STAMP)

# PDF tools the invoice tests check output with; curl and GNU time for benches.
SYSTEM_TOOLS := qpdf pdftotext pdffonts curl /usr/bin/time
system-deps:
	@missing=""; for t in $(SYSTEM_TOOLS); do command -v $$t >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq qpdf poppler-utils curl time >/dev/null; \
	fi

arm64-target:
	@rustup target list --installed | grep -qx $(ARM64) || rustup target add $(ARM64)

# Until the first task crate lands, the runtime fixture stands in so the
# cross-build toolchain is still exercised.
build: $(VENV_STAMP) arm64-target
	cargo lambda build --release --arm64 --locked \
	  $(if $(TASKS),$(addprefix --bin ,$(TASKS)),--bin fixture-task)
	@ls -l target/lambda/*/bootstrap

# Numbers, never assertions. Chromium is the side-by-side baseline for PDFs.
bench: build system-deps
	@command -v chromium >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }
	cargo bench --locked -p common -p invoice
	cargo build --release --locked -p invoice --bin render-invoice
	$(PYTHON) scripts/bench_invoice.py target/release/render-invoice chromium target/lambda/invoice/bootstrap
	cargo build --release --locked -p backup -p tests --bin backup --bin bench-backup
	MOTO_SERVER=$(CURDIR)/$(VENV)/bin/moto_server target/release/bench-backup target/release/backup $(CURDIR)/$(VENV)/bin/aws

clean:
	cargo clean
	rm -rf $(VENV)
