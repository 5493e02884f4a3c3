#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need, then runs them.
#   bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# Tests build real Git repositories and sign commits with real SSH keys, and query a real
# Prometheus.
need_apt=()
command -v git >/dev/null || need_apt+=(git)
command -v ssh-keygen >/dev/null || need_apt+=(openssh-client)
# A real Prometheus (with promtool, to backfill usage) answers the usage queries of rightsizing.
command -v prometheus >/dev/null && command -v promtool >/dev/null || need_apt+=(prometheus)
# The web UI's browser tests drive Debian's headless Chromium through chromedriver.
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
# A real PostgreSQL for the store and replica tests (each test starts its own server with
# initdb and pg_ctl; Debian keeps them in /usr/lib/postgresql/VERSION/bin).
command -v initdb >/dev/null || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need_apt+=(postgresql)
if ((${#need_apt[@]})); then
  echo "installing ${need_apt[*]}" >&2
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
fi

# The SARIF test validates assay's output with Microsoft's SARIF multitool (from npm).
tools="${ASSAY_TOOLS_DIR:-${CARGO_TARGET_DIR:-$PWD/target}/tools}"
if [[ ! -x "$tools/node_modules/.bin/sarif-multitool" ]]; then
  echo "installing @microsoft/sarif-multitool into $tools" >&2
  mkdir -p "$tools"
  npm install --silent --no-audit --no-fund --prefix "$tools" @microsoft/sarif-multitool@5.7.0 >&2
fi
export ASSAY_SARIF_MULTITOOL="$tools/node_modules/.bin/sarif-multitool"
# The web UI's accessibility test runs Deque's axe-core (WCAG 2.1 A and AA rules) in Chromium.
if [[ ! -f "$tools/node_modules/axe-core/axe.min.js" ]]; then
  echo "installing axe-core into $tools" >&2
  npm install --silent --no-audit --no-fund --prefix "$tools" axe-core@4.11.0 >&2
fi
export ASSAY_AXE="$tools/node_modules/axe-core/axe.min.js"

# From PyPI: the provenance test verifies assay's DSSE envelopes with securesystemslib; the
# lineage intake test sends events with OpenLineage's own Python client.
pyenv="${ASSAY_PYTHON_VENV:-${CARGO_TARGET_DIR:-$PWD/target}/tools/pyenv}"
# DuckDB answers the FinOps Foundation's FOCUS use-case queries independently of assay. moto's
# server mode is the S3-compatible server of the object-storage tests.
if ! "$pyenv/bin/python" -c 'import securesystemslib.dsse, openlineage.client, duckdb, pytz, moto.server' 2>/dev/null; then
  echo "installing securesystemslib, openlineage-python, duckdb and moto into $pyenv" >&2
  [[ -x "$pyenv/bin/python" ]] || python3 -m venv "$pyenv"
  "$pyenv/bin/pip" install --quiet 'securesystemslib[crypto]==1.6.0' 'openlineage-python==1.40.1' 'duckdb==1.4.2' \
    'pytz==2025.2' 'moto[server]==5.1.18' >&2
fi
# OPA 1.20.2 itself, the oracle of the Rego differential test: its Go engine as a shared library
# from PyPI. The wheel declares Python 3.14 but loads and evaluates on 3.11.
if ! "$pyenv/bin/python" -c 'import opa_bindings' 2>/dev/null; then
  echo "installing opa-golib-python-bindings (OPA 1.20.2) into $pyenv" >&2
  "$pyenv/bin/pip" install --quiet --ignore-requires-python --no-deps --only-binary=:all: \
    'opa-golib-python-bindings==0.4.4' >&2
fi
export ASSAY_PYTHON_VENV="$pyenv"

# A cold build and test run takes about 10 GB under the target directory (fuzzers included). A
# disk that fills up mid-build shows as a linker's "Bus error"; say so before it does.
target="${CARGO_TARGET_DIR:-$PWD/target}"
mkdir -p "$target"
free_gb=$(df -Pk "$target" | awk 'NR == 2 { print int($4 / 1048576) }')
if ((free_gb < 10)); then
  echo "warning: ${free_gb} GB free under $target; a cold build and test run needs about 10 GB" >&2
fi
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
cargo build --workspace --all-targets
cargo nextest run --workspace --no-fail-fast

# The example estate's own Rego unit tests and Gatekeeper suite.
assay="${CARGO_TARGET_DIR:-$PWD/target}/debug/assay"
"$assay" policy verify examples/estate/tests
"$assay" policy test examples/estate

# Every fuzz target for a minute (ASSAY_FUZZ_SECONDS to change it), from its corpus; a crash
# fails the run. Their corpora and past crashers also ran above, as tests of assay-fuzz.
bash scripts/fuzz.sh
