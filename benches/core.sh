#!/usr/bin/env bash
# The Core comparison of docs/BENCHMARKS.md in one command: Ray 2.60's side
# of every Core microbenchmark row (benches/reference/core_bench.py, the
# shapes of `ray microbenchmark`), then wray's (`wray microbenchmark`, same
# workloads, release build), printed as one table with both columns and the
# ratio; then the rows across nodes (a head and a worker as processes on
# 127.0.0.1) with raw QUIC beside the object transfer, and Ray's cross-node
# figures from a three-raylet `ray.cluster_utils.Cluster` on the same machine. Ray is installed into a
# venv kept outside the clone (/var/tmp/wray-bench-venv) the first time.
#
#   benches/core.sh              # both tables, Markdown
#   SCALE=0.2 benches/core.sh    # smaller wray workloads: faster, noisier
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/ray-venv.sh
cargo build --release -q -p wray-cli
job=$(target/release/wray build benches/microbench | tail -n1)
# Kept after the run: `wray microbenchmark --ray "$figures" ...` can print the
# table again without measuring Ray again.
figures=${FIGURES:-/var/tmp/wray-bench-ray-core.jsonl}
echo "measuring Ray $("$venv/bin/python" -c 'import ray; print(ray.__version__)') ..." >&2
"$venv/bin/python" benches/reference/core_bench.py > "$figures.new"
mv "$figures.new" "$figures"
echo "Ray's figures: $figures" >&2
echo "measuring wray ..." >&2
target/release/wray microbenchmark --markdown --scale "${SCALE:-1}" --ray "$figures" "$job"
echo
target/release/wray microbenchmark --cluster --markdown --scale "${SCALE:-1}" --ray "$figures" "$job"
