#!/usr/bin/env bash
# The Tune benchmark of docs/BENCHMARKS.md: 200 trials x up to 30 reports of
# the trivial objective, with ASHA and with FIFO, in wray and (if `pip install
# "ray[tune]"` has been done) in Ray Tune, in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p wray-cli
job=$(target/release/wray build examples/tune_hyperband | tail -n1)
for run in 1 2 3; do
    target/release/wray run "$job" -- --bench
done
if python3 -c "import ray.tune" 2>/dev/null; then
    python3 benches/reference/tune_bench.py 2>/dev/null
else
    echo "ray: not installed (pip install \"ray[tune]\") — reference not measured"
fi
