#!/usr/bin/env bash
# Scale beyond this machine (docs/BENCHMARKS.md, issue 20): the head's
# placement driven by 1,000,000 tasks over 1,000 simulated nodes
# (runtime/sched/examples/scale.rs: decisions per second, head memory per
# node), then a real loopback cluster of a head and 15 worker processes
# running 100,000 tasks and 1,000 actors placed by the head, every result
# checked (`wray microbenchmark --scale-out`: rates, the head's CPU time and
# memory).
#
#   benches/scale.sh             # full size
#   SCALE=0.1 benches/scale.sh   # a tenth of the tasks and actors
set -euo pipefail
cd "$(dirname "$0")/.."
echo "## simulation" >&2
cargo run --release -q -p wray-sched --example scale
cargo build --release -q -p wray-cli
job=$(target/release/wray build benches/microbench | tail -n1)
echo "## loopback cluster" >&2
target/release/wray microbenchmark --scale-out --markdown --scale "${SCALE:-1}" "$job"
