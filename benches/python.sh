#!/usr/bin/env bash
# Python jobs beside Ray 2.60 in one sitting (docs/BENCHMARKS.md, issue 21):
# the same script (benches/reference/python_bench.py) run by CPython with
# Ray and built into a wray job — task round trips, 1,000 async tasks, actor
# calls, process start to first result, the memory of an idle job — printed
# as one table with the ratio. Ray is installed into the venv benches/core.sh
# uses (/var/tmp/wray-bench-venv) the first time; componentize-py comes from
# scripts/setup.
#
#   benches/python.sh             # best of 3 rounds
#   ROUNDS=1 benches/python.sh    # quicker, noisier
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/ray-venv.sh
cargo build --release -q -p wray-cli
job=$(target/release/wray build benches/reference/python_bench.py -o /var/tmp/wray-python-bench.wasm | tail -n1)
# Compile the component once (cached) before anything is timed.
target/release/wray run "$job" -- first >/dev/null
export RAY_VERSION
RAY_VERSION=$("$venv/bin/python" -c 'import ray; print(ray.__version__)')
echo "measuring Ray $RAY_VERSION and wray, alternating ..." >&2
python3 benches/reference/python_compare.py "$venv/bin/python" target/release/wray "$job"
