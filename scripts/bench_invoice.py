#!/usr/bin/env python3
"""Invoice rendering, whole-process: our `render-invoice` (krilla) against
headless Chromium printing an equivalent HTML invoice, the way many Lambda
users render PDFs. Prints a Markdown report; asserts nothing.

Usage: bench_invoice.py RENDER_INVOICE_BINARY CHROMIUM [ARM64_BOOTSTRAP]
"""

import hashlib
import html
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = int(os.environ.get("BENCH_RUNS", "15"))


def order(lines):
    with open(os.path.join(ROOT, "events", "invoice_order.json"), encoding="utf-8") as f:
        data = json.load(f)
    data["lines"] = [
        {
            "description": f"Item {i} Zoë Müller Łódź 山田太郎",
            "quantity": "2",
            "unit_price": "19.99",
            "tax_rate": "19" if i % 2 == 0 else "7",
        }
        for i in range(lines)
    ]
    return data


def as_html(data):
    """An HTML invoice with the same content and a comparable layout."""
    rows = "".join(
        f"<tr><td>{html.escape(l['description'])}</td><td class=n>{l['quantity']}</td>"
        f"<td class=n>{l['unit_price']}</td><td class=n>{l['tax_rate']}%</td>"
        f"<td class=n>{float(l['quantity']) * float(l['unit_price']):.2f}</td></tr>"
        for l in data["lines"]
    )
    party = lambda p: "<br>".join(html.escape(x) for x in [p["name"], *p.get("address", []), p["email"]])
    return f"""<!doctype html><html><head><meta charset=utf-8><style>
@page {{ size: A4; margin: 50pt }} body {{ font: 9.5pt 'DejaVu Sans', 'Droid Sans Fallback', sans-serif }}
table {{ width: 100%; border-collapse: collapse }} thead {{ display: table-header-group }}
th {{ text-align: left; border-bottom: 1px solid #888 }} td.n, th.n {{ text-align: right }}
</style></head><body><h1>INVOICE</h1><p>Invoice no. {html.escape(data['order_id'])}<br>
Issue date {data['issue_date']}</p><table><tr><td>{party(data['seller'])}</td><td>{party(data['buyer'])}</td></tr></table>
<table><thead><tr><th>Description</th><th class=n>Qty</th><th class=n>Unit price</th><th class=n>Tax</th>
<th class=n>Amount</th></tr></thead><tbody>{rows}</tbody></table></body></html>"""


def run(cmd, stdout_path=None):
    """Runs a command once; returns (seconds, peak RSS of its largest process in MiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    with open(stdout_path or os.devnull, "wb") as out:
        subprocess.run(cmd, stdout=out, stderr=subprocess.DEVNULL, check=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, max(before, after) / 1024


def measure(cmd, out_path, stdout_is_pdf):
    times, digests = [], set()
    for _ in range(RUNS):
        elapsed, _ = run(cmd, out_path if stdout_is_pdf else None)
        times.append(elapsed * 1000)
        with open(out_path, "rb") as f:
            digests.add(hashlib.sha256(f.read()).hexdigest())
    return statistics.median(times), min(times), max(times), len(digests) == 1, os.path.getsize(out_path)


def main():
    render_bin, chromium = sys.argv[1], sys.argv[2]
    bootstrap = sys.argv[3] if len(sys.argv) > 3 else None
    tmp = tempfile.mkdtemp(prefix="bench-invoice-")
    profile = os.path.join(tmp, "chromium-profile")
    print(f"## Invoice rendering ({RUNS} runs each, one process per run)\n")
    print("| lines | renderer | median ms | min ms | max ms | PDF bytes | same bytes every run |")
    print("|---:|---|---:|---:|---:|---:|---|")
    rss_rows = []
    for lines in (1, 20, 500):
        data = order(lines)
        order_path = os.path.join(tmp, f"order-{lines}.json")
        with open(order_path, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False)
        html_path = os.path.join(tmp, f"order-{lines}.html")
        with open(html_path, "w", encoding="utf-8") as f:
            f.write(as_html(data))

        ours = os.path.join(tmp, f"ours-{lines}.pdf")
        # Peak RSS per renderer, measured in a fresh interpreter child so
        # RUSAGE_CHILDREN is not shared between the two.
        med, lo, hi, same, size = measure([render_bin, order_path], ours, True)
        print(f"| {lines} | krilla (`render-invoice`) | {med:.1f} | {lo:.1f} | {hi:.1f} | {size} | {same} |")
        rss_rows.append((lines, "krilla", peak_rss([render_bin, order_path])))

        theirs = os.path.join(tmp, f"chromium-{lines}.pdf")
        cmd = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--no-pdf-header-footer", f"--print-to-pdf={theirs}",
            "file://" + html_path,
        ]
        med, lo, hi, same, size = measure(cmd, theirs, False)
        print(f"| {lines} | headless Chromium | {med:.1f} | {lo:.1f} | {hi:.1f} | {size} | {same} |")
        rss_rows.append((lines, "chromium", peak_rss(cmd)))

    print("\n| lines | renderer | peak RSS of its largest process (MiB) |")
    print("|---:|---|---:|")
    for lines, name, rss in rss_rows:
        print(f"| {lines} | {name} | {rss:.1f} |")
    print("\nChromium runs several processes; only the largest one's peak is counted, so its total is higher.")
    if bootstrap and os.path.exists(bootstrap):
        print(f"\narm64 `bootstrap` of the invoice task (stripped, fonts embedded): {os.path.getsize(bootstrap):,} bytes")


def peak_rss(cmd):
    probe = (
        "import resource,subprocess,sys;"
        "subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True, check=True)
    return int(out.stdout.strip()) / 1024


if __name__ == "__main__":
    main()
