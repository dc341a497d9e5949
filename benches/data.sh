#!/usr/bin/env bash
# The Data benchmark of docs/BENCHMARKS.md: 1,000,000 rows through map +
# filter (row functions) then count and take_all, and two map_batches over
# columnar batches — in wray and in Ray Data 2.60 in the same run, each
# process's peak RSS beside its times. Ray is installed into a venv kept
# outside the clone (/var/tmp/wray-bench-venv) the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=/var/tmp/wray-bench-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import ray.data" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "ray[data]==2.60.*" numpy pandas pyarrow
fi
cargo build --release -q -p wray-cli
job=$(target/release/wray build examples/data_walkthrough | tail -n1)
echo "## wray"
/usr/bin/time -f "wray peak RSS: %M KiB" target/release/wray run "$job" -- --bench
echo "## Ray Data $("$venv/bin/python" -c 'import ray; print(ray.__version__)')"
/usr/bin/time -f "ray driver peak RSS: %M KiB (workers not included)" "$venv/bin/python" benches/reference/data_bench.py
