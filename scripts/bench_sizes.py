#!/usr/bin/env python3
"""Prints a Markdown table of bootstrap sizes and their zip sizes.

Usage: bench_sizes.py LABEL=PATH [LABEL=PATH ...]

The zip is made as Lambda receives a deployment package: one `bootstrap`
entry, deflate at the default level.
"""

import io
import sys
import zipfile
from pathlib import Path


def zipped_size(path: Path) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.write(path, "bootstrap")
    return len(buffer.getvalue())


def main() -> None:
    rows = ["| binary | bootstrap bytes | MiB | zip bytes |", "|---|---:|---:|---:|"]
    for argument in sys.argv[1:]:
        label, _, raw = argument.partition("=")
        path = Path(raw)
        if not path.exists():
            rows.append(f"| {label} | not built | - | - |")
            continue
        size = path.stat().st_size
        rows.append(f"| {label} | {size:,} | {size / 2**20:.2f} | {zipped_size(path):,} |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
