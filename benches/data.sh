#!/usr/bin/env bash
# The Data benchmark of docs/BENCHMARKS.md: 1,000,000 rows through map +
# filter (row functions) then count and take_all, and two map_batches over
# columnar batches — in wray and in Ray Data 2.60 in the same run, each
# process's peak RSS beside its times; then 1 GiB of CSV converted to
# Parquet by wray and by pyarrow. Ray and pyarrow are installed into a venv
# kept outside the clone (/var/tmp/wray-bench-venv) the first time, the CSV
# is generated (by the test job) into /var/tmp/wray-bench-data once.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=/var/tmp/wray-bench-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import ray.data, pyarrow" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "ray[data]==2.60.*" numpy pandas pyarrow
fi
cargo build --release -q -p wray-cli
job=$(target/release/wray build examples/data_walkthrough | tail -n1)
echo "## wray"
/usr/bin/time -f "wray peak RSS: %M KiB" target/release/wray run "$job" -- --bench
echo "## Ray Data $("$venv/bin/python" -c 'import ray; print(ray.__version__)')"
/usr/bin/time -f "ray driver peak RSS: %M KiB (workers not included)" "$venv/bin/python" benches/reference/data_bench.py
data=/var/tmp/wray-bench-data
if [ ! -d "$data/in/csv" ]; then
    mkdir -p "$data"
    testjob=$(target/release/wray build tests/programs/testjob | tail -n1)
    # 17 M rows: about 1 GiB of CSV (and 0.6 GiB of Parquet beside it).
    target/release/wray run --dir "$data::/work" "$testjob" -- data-generate /work 17000000 2>/dev/null
fi
echo "## CSV -> Parquet, $(du -sh "$data/in/csv" | cut -f1) of CSV, three rounds, wray and pyarrow alternating"
# This machine's speed drifts by 10-20 % within minutes: alternating rounds
# put both sides under the same drift; compare best with best.
# Read the CSV once first, so that neither side's first round pays for the
# disk (after a build the page cache may have dropped it).
cat "$data"/in/csv/* > /dev/null
for round in 1 2 3; do
    rm -rf "$data/in/parquet-wray" "$data/in/parquet-pyarrow"
    /usr/bin/time -f "wray peak RSS: %M KiB" target/release/wray run --dir "$data/in::/bench" "$job" -- --bench-csv /bench 2>&1 | grep -v "^wray::data"
    /usr/bin/time -f "pyarrow peak RSS: %M KiB" "$venv/bin/python" benches/reference/csv_to_parquet.py "$data/in"
done
echo "Parquet written: wray $(du -sb "$data/in/parquet-wray" | cut -f1) bytes, pyarrow $(du -sb "$data/in/parquet-pyarrow" | cut -f1) bytes"
