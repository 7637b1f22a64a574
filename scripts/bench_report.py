#!/usr/bin/env python3
"""Writes BENCHMARKS.md from the fragments `make bench` left in a folder.

Usage: bench_report.py <fragments-dir> <load-before> <load-after>

Each fragment is Markdown (or plain text, shown as a block) from one bench
step; this script adds the machine, the date, the exact commands and how
noisy the machine was (load averages around the run, spread of the samples).
"""

import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

SECTIONS = [
    ("cold.md", "1. Cold start",
     "Each program started 30 times against its own local Runtime API "
     "(`bench/src/bin/runtime_bench.rs`). Goal: `common` adds at most 1 ms "
     "to the bare echo's init (compare `echo-common` with `echo-bare`)."),
    ("warm.md", "2. Warm overhead",
     "Round trips through a local Runtime API loop, 5,000 invocations after "
     "200 warm-up ones, logs to a sink (`/dev/null`). All programs run at "
     "once and take turns, one invocation each per round, so the machine's "
     "drift hits them alike. Goal: at most 20 µs added end to end at p50. "
     "`echo-bare` is lambda_runtime's example as written (`#[tokio::main]`, "
     "two worker threads here); `echo-bare, current thread` the same on the "
     "one-thread runtime the tasks and `echo-common` use."),
    ("first-call.md", "2a. First call over TLS under Lambda-like CPU shares",
     "`bench/src/bin/first_call_bench.rs`: a TLS proxy with a test CA in "
     "front of the local stack; each program in a CPU-quota cgroup sized as "
     "Lambda sizes CPU (one vCPU at 1,769 MB, in proportion below)."),
    ("inprocess.md", "2b. In-process: `common` vs Powertools",
     "criterion (`common/benches/invocation.rs`) runs the whole pipeline "
     "in-process with its JSON lines going to a sink, beside the echo alone; "
     "`bench/powertools/inprocess.py` times the Powertools handler the same "
     "way. Goal: `common` costs at most a tenth of Powertools."),
    ("criterion.txt", "2c. Envelope and correlation (criterion)",
     "`cargo bench -p sfn-task --bench envelope`, per payload shape, and the "
     "invoice render benches."),
    ("sizes.md", "3. Sizes",
     "arm64, release profile (`opt-level = \"s\"`, `lto = \"fat\"`, "
     "`codegen-units = 1`, `strip = \"symbols\"`, `panic = \"unwind\"`), as "
     "`sam build` / `cargo lambda build --arm64` make them; zip as Lambda "
     "receives it (deflate). Goals: `echo-common` at most 6 MiB, each task "
     "at most 8 MiB, `invoice` with its fonts at most 12 MiB."),
    ("memory.md", "4. Memory", "Peak RSS of each process after its first response."),
    ("invoice.txt", "5a. Invoice: krilla vs headless Chromium",
     "`scripts/bench_invoice.py`: whole-process renders, 10 runs each."),
    ("backup.txt", "5b. Backup: streaming export vs `aws s3 cp`",
     "`bench-backup` against moto on 127.0.0.1."),
    ("backup-scale.md", "5c. Backup at scale: the continuation loop vs a Distributed Map",
     "`bench/src/bin/backup_scale_bench.rs` on the local stack."),
    ("workflow.md", "6. Workflows and query languages",
     "`bench/src/bin/workflow_bench.rs`. Standard workflows are billed per "
     "state transition."),
]

# Hand-written analysis of the goals, kept beside the bench code.
FINDINGS = Path(__file__).resolve().parent.parent / "bench" / "findings.md"

COMMANDS = """\
make bench
# which runs, in order:
make build                                   # sam build: arm64 bootstraps
cargo bench --locked -p sfn-task --bench envelope -p invoice
AWS_LAMBDA_LOG_FORMAT=JSON cargo bench --locked -p sfn-task --bench invocation > /dev/null
(cd bench/powertools && ../../.venv-bench/bin/python inprocess.py)
cargo build --release -p invoice -p notify -p backup -p echoes --bins   # measured, as shipped
cargo build --profile tools -p bench -p tests --bins                    # the tools, target/tools
python3 scripts/bench_invoice.py target/release/render-invoice chromium .aws-sam/build/InvoiceFunction/bootstrap
target/tools/bench-backup target/release/backup .venv/bin/aws
target/tools/runtime-bench target/bench target/release .venv-bench/bin/python
target/tools/first-call-bench target/bench target/release
target/tools/workflow-bench target/bench target/release
target/tools/backup-scale-bench target/bench target/release
python3 scripts/bench_sizes.py ...
python3 scripts/bench_report.py target/bench ..."""


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    return (f"{os.cpu_count()} × {cpu}, {memory} RAM, {platform.system()} "
            f"{platform.release()}, {platform.python_implementation()} "
            f"{platform.python_version()}, {rustc}")


def main() -> None:
    folder = Path(sys.argv[1])
    load_before, load_after = sys.argv[2], sys.argv[3]
    out = [
        "# Benchmarks",
        "",
        "Numbers, not assertions: nothing here fails CI. Written by `make bench`.",
        "",
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
        f"- Machine: {machine()}",
        f"- Noise: 1-minute load average {load_before} before the run, "
        f"{load_after} after; each table shows min and max beside the median, "
        "a wide spread means a noisy machine.",
        "",
        "Commands:",
        "",
        "```sh",
        COMMANDS,
        "```",
        "",
    ]
    for name, title, intro in SECTIONS:
        out += [f"## {title}", "", intro, ""]
        path = folder / name
        if not path.exists():
            out += ["_Not measured in this run._", ""]
            continue
        text = path.read_text().rstrip()
        if name.endswith(".txt"):
            out += ["```", text, "```", ""]
        else:
            out += [text, ""]
    if FINDINGS.exists():
        out += ["## Goals: what is missed, by how much, and why", "", FINDINGS.read_text().rstrip(), ""]
    print("\n".join(out))


if __name__ == "__main__":
    main()
