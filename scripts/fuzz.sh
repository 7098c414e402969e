#!/usr/bin/env bash
# The fuzz targets in fuzz/ (cargo-fuzz, libFuzzer), each over its corpus in fuzz/corpus/.
#   scripts/fuzz.sh                 CI slice: every target for FUZZ_SECONDS (default 20) with
#                                   AddressSanitizer; any crash fails.
#   scripts/fuzz.sh long [RUNS]     every target for RUNS executions (default 10 million),
#                                   without a sanitizer (the targets are safe Rust), new
#                                   inputs kept in target/fuzz-corpus/<target>. To bring them
#                                   into the repo: <target binary> -set_cover_merge=1 NEW
#                                   corpus/<target> target/fuzz-corpus/<target>, then replace
#                                   corpus/<target> with NEW.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh fuzz
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/blende-target}
export PATH="$CARGO_TARGET_DIR/tools/bin:$PATH"
targets=(blende_machine janus_machine whip_http room_protocol policy_file vp8_rtp p2p_receiver)
mode=${1:-slice}
cd fuzz
if [ "$mode" = long ]; then
  runs=${2:-10000000}
  dir="$CARGO_TARGET_DIR/fuzz-nosan"
  CARGO_TARGET_DIR="$dir" cargo +nightly fuzz build -O -s none
  for t in "${targets[@]}"; do
    mkdir -p "$CARGO_TARGET_DIR/fuzz-corpus/$t"
    start=$(date +%s)
    "$dir/x86_64-unknown-linux-gnu/release/$t" -runs="$runs" -max_len=8192 -print_final_stats=1 \
      "$CARGO_TARGET_DIR/fuzz-corpus/$t" "corpus/$t" 2>&1 | grep -E '^stat::number_of_executed_units|^Done|ERROR|panicked' || true
    echo "fuzz: $t: $runs runs in $(( $(date +%s) - start )) s"
  done
else
  seconds=${FUZZ_SECONDS:-20}
  dir="$CARGO_TARGET_DIR/fuzz"
  CARGO_TARGET_DIR="$dir" cargo +nightly fuzz build -O
  for t in "${targets[@]}"; do
    work=$(mktemp -d)
    # Reads corpus/<target> and writes nothing back into the repo.
    "$dir/x86_64-unknown-linux-gnu/release/$t" -max_total_time="$seconds" -max_len=8192 \
      -artifact_prefix="$work/" "$work" "corpus/$t" > "$work/log" 2>&1 || {
      echo "fuzz: $t FAILED; the input is in $work" >&2
      tail -40 "$work/log" >&2
      exit 1
    }
    echo "fuzz: $t: $(grep -E '^#[0-9]+' "$work/log" | tail -1 | awk '{print $1, $2, "cov", $4}') in ${seconds} s"
    rm -rf "$work"
  done
fi
