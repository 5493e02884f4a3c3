#!/usr/bin/env bash
# Runs every fuzz target (fuzz/, cargo-fuzz on stable Rust, no sanitizer) for a bounded time,
# starting from its corpus in fuzz/corpus/ and, where there is one, public data in
# ../shared/conformance. A crash fails the run and leaves the input in fuzz/artifacts/TARGET/:
# add it to fuzz/regressions/TARGET/ under a name that says what it found, and fix the cause.
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET]     (default 60, or ASSAY_FUZZ_SECONDS)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-${ASSAY_FUZZ_SECONDS:-60}}"
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz@0.13.2
target_dir="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"
fuzz=(cargo fuzz run --fuzz-dir fuzz --dev --sanitizer none --target-dir "$target_dir")
cargo fuzz build --fuzz-dir fuzz --dev --sanitizer none --target-dir "$target_dir"
shared=../shared/conformance
declare -A extra=(
  [focus_row]="$shared/focus"
  [openlineage_event]="$shared/openlineage/spec/tests"
  [signed_note]="$shared/tessera/log"
  [estate_files]=""
  [admission_review]=""
)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for target in focus_row estate_files openlineage_event signed_note admission_review; do
  # New inputs go to a scratch copy: the corpus in the repository stays as committed.
  mkdir -p "$work/$target"
  cp fuzz/corpus/"$target"/* "$work/$target/"
  dirs=("$work/$target")
  [[ -n "${extra[$target]}" && -d "${extra[$target]}" ]] && dirs+=("${extra[$target]}")
  echo "fuzzing $target for ${seconds}s" >&2
  rm -rf "fuzz/artifacts/$target"
  if ! "${fuzz[@]}" "$target" "${dirs[@]}" -- -max_total_time="$seconds" -max_len=16384 -timeout=10 \
    -rss_limit_mb=2048 >"$work/$target.log" 2>&1; then
    tail -40 "$work/$target.log" >&2
    echo "fuzz target $target failed; the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E '^(#[0-9]+ +DONE|Done )' "$work/$target.log" >&2 || true
done
