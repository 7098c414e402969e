#!/usr/bin/env bash
# Keeps the shared target folder from filling the disk. Every clean checkout (CI clones it
# under a new path) builds the workspace crates again beside the old ones, and incremental
# data grows with each: on a 2-core machine the folder passed 70 GB and a run failed with
# "No space left on device". The dependencies (slow to build) are kept; what goes is what the
# next build makes again cheaply or not at all:
#   - incremental compilation data (rebuilt for the workspace crates on the next build);
#   - all but the newest copy of each workspace test or binary artifact in deps/.
# Runs only when less than PRUNE_BELOW_GB (default 25) are free where the folder lives.
set -euo pipefail
target=${CARGO_TARGET_DIR:-/var/tmp/blende-target}
[ -d "$target" ] || exit 0
below=${PRUNE_BELOW_GB:-25}
free_gb=$(df -P -BG "$target" | awk 'NR==2 {gsub("G", "", $4); print $4}')
if [ "$free_gb" -ge "$below" ]; then
  exit 0
fi
echo "prune-target: ${free_gb} GB free under $target (< ${below} GB): pruning"
for profile in debug release; do
  rm -rf "${target:?}/$profile/incremental"
  deps="$target/$profile/deps"
  [ -d "$deps" ] || continue
  # Workspace artifacts: the crates' own names (blende*, xtask) and the integration-test
  # binaries (one per crate: interop, cli, server, rtc, policy, package …). Newest first, keep one.
  names=$(find "$deps" -maxdepth 1 -type f -executable -name '*-????????????????' -printf '%f\n' | sed 's/-[0-9a-f]\{16\}$//' | sort -u)
  for n in $names; do
    { ls -t "$deps/$n"-???????????????? 2>/dev/null || true; } | tail -n +2 | xargs -r rm -f
  done
done
echo "prune-target: $(df -P -BG "$target" | awk 'NR==2 {print $4}') free now"
