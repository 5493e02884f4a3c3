#!/usr/bin/env bash
# Billing store benchmark against DuckDB (see BENCHMARKS.md). DuckDB is installed from PyPI into
# a virtual environment for the benchmark only.
# Usage: bash scripts/bench-cost.sh [WORKDIR] [ROWS]   (needs ~15 GB of disk for 20M rows of CSV)
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-/tmp/assay-bench-cost}"
rows="${2:-20000000}"
venv="${ASSAY_BENCH_VENV:-$work/venv}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet duckdb pytz
fi
cargo build --release -p assay
target="${CARGO_TARGET_DIR:-$PWD/target}"
"$venv/bin/python" scripts/bench_cost.py "$target/release/assay" "$work" --rows "$rows"
