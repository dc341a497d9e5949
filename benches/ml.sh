#!/usr/bin/env bash
# The ML benchmarks of docs/BENCHMARKS.md, with their references measured in
# the same run: GEMM (wray's CPU and wgpu paths vs numpy/OpenBLAS with 1 and
# all threads) and the wine MLP (wray vs scikit-learn's MLPClassifier).
# Needs python3 with numpy and scikit-learn (pip install numpy scikit-learn).
# GPU figures come from whatever Vulkan adapter there is; on a machine without a
# GPU that is Mesa's lavapipe, which says nothing about real GPUs: read ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes="256 512 1024 2048"
cargo build --release -q -p wray-cli
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
# References and wray alternate, so a noisy machine hits both alike.
for run in 1 2; do
    cargo run --release -q -p wray-gpu --example gemm -- $sizes
    python3 benches/reference/gemm.py 1 $sizes
    python3 benches/reference/gemm.py "$(nproc)" $sizes
done
job=$(target/release/wray build examples/wine_mlp | tail -n1)
for run in 1 2 3; do
    target/release/wray run --dir examples/data::/data "$job" -- --epochs 150 | sed "s/^/wray batch 32, run $run: /"
    target/release/wray run --dir examples/data::/data "$job" -- --epochs 150 --batch 200 | sed "s/^/wray batch 200, run $run: /"
    python3 benches/reference/wine_mlp.py examples/data/winequality-red.csv
done
