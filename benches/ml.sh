#!/usr/bin/env bash
# The ML benchmarks of docs/BENCHMARKS.md, with their references measured in
# the same run: GEMM (wray's CPU and wgpu paths vs numpy/OpenBLAS with 1 and
# all threads) and the wine MLP (wray vs scikit-learn's MLPClassifier).
# Needs python3 with numpy and scikit-learn (pip install numpy scikit-learn).
set -euo pipefail
cd "$(dirname "$0")/.."
sizes="256 512 1024 2048"
cargo build --release -q -p wray-cli
cargo run --release -q -p wray-gpu --example gemm -- $sizes
OPENBLAS_NUM_THREADS=1 python3 benches/reference/gemm.py openblas-1-thread $sizes
python3 benches/reference/gemm.py "openblas-$(nproc)-threads" $sizes
job=$(target/release/wray build examples/wine_mlp | tail -n1)
for run in 1 2 3; do
    target/release/wray run --dir examples/data::/data "$job" -- --epochs 150 | sed "s/^/wray run $run: /"
    python3 benches/reference/wine_mlp.py examples/data/winequality-red.csv
done
