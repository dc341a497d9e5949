#!/usr/bin/env bash
# The Train benchmark of docs/BENCHMARKS.md, references in the same run:
# the cost of `report` and of one allreduce of the wine model's gradients
# inside a training loop; allreduce of 100 MiB over 2 workers on one node
# beside a memcpy of the same buffer (measured in the same instance);
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
echo "## wine MLP, 150 epochs: the 2-worker trainer (wall time of the whole wray run) and scikit-learn"
for run in 1 2 3; do
    /usr/bin/time -f "wray run, start to finish: %e s, peak RSS %M KiB" \
        target/release/wray run --dir examples/data::/data "$wine" 2>&1 | grep -E "^(trained|test accuracy|wray run)"
    "$venv/bin/python" benches/reference/wine_mlp.py examples/data/winequality-red.csv
done
