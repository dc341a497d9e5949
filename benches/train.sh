#!/usr/bin/env bash
# The Train benchmark of docs/BENCHMARKS.md, references in the same run:
# the cost of `report` and of one allreduce of the wine model's gradients
# inside a training loop; allreduce of 100 MiB over 2 workers on one node
# beside a memcpy of the same buffer (measured in the same instance);
# the same allreduces with the two workers on two nodes (a head and a
# worker, `wray start` processes on 127.0.0.1) beside raw QUIC between two
# processes on the same loopback, measured in the same run;
# samples/s of a 1M-parameter MLP on 2 workers against 1 worker; and the
# wine MLP trained by the 2-worker trainer, start to finish, against
# scikit-learn's MLPClassifier (installed into the venv benches/data.sh
# uses, /var/tmp/wray-bench-venv, the first time).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=/var/tmp/wray-bench-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import sklearn" 2>/dev/null; then
    "$venv/bin/pip" install -q numpy scikit-learn
fi
cargo build --release -q -p wray-cli
bench=$(target/release/wray build benches/train_bench | tail -n1)
wine=$(target/release/wray build examples/train_wine | tail -n1)
echo "## wray::train"
target/release/wray run "$bench"

echo "## collectives across two nodes, and raw QUIC on the same loopback"
nodes=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$nodes"' EXIT
# Prints "address: ..." and "token: ..." once it listens.
target/release/wray start --head --port 0 --cpus 2 --object-store-memory 2GiB --block \
    --data-dir "$nodes/head" --cache-dir "$nodes/cache" >"$nodes/head.out" 2>/dev/null &
pids+=($!)
for _ in $(seq 100); do grep -q '^token: ' "$nodes/head.out" && break; sleep 0.2; done
address=$(sed -n 's/^address: //p' "$nodes/head.out")
token=$(sed -n 's/^token: //p' "$nodes/head.out")
target/release/wray start --address "$address" --token "$token" --cpus 2 --object-store-memory 2GiB --block \
    --data-dir "$nodes/worker" --cache-dir "$nodes/cache" >"$nodes/worker.out" 2>/dev/null &
pids+=($!)
for _ in $(seq 100); do grep -q '^joined: ' "$nodes/worker.out" && break; sleep 0.2; done
target/release/wray run --address "$address" --token "$token" "$bench" -- --two-nodes
target/release/wray microbenchmark --raw-quic 100 "$bench"
kill "${pids[@]}" 2>/dev/null || true
echo "## wine MLP, 150 epochs: the 2-worker trainer and scikit-learn, each timed start to finish"
for run in 1 2 3; do
    /usr/bin/time -f "wray run, start to finish: %e s, peak RSS %M KiB" \
        target/release/wray run --dir examples/data::/data "$wine" 2>&1 | grep -E "^(trained|test accuracy|wray run)"
    "$venv/bin/python" benches/reference/wine_mlp.py examples/data/winequality-red.csv
    /usr/bin/time -f "python, defaults only, start to finish: %e s, peak RSS %M KiB" \
        "$venv/bin/python" benches/reference/wine_mlp.py examples/data/winequality-red.csv --defaults-only
done
