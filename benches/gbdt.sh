#!/usr/bin/env bash
# The boosted-trees benchmark of docs/BENCHMARKS.md, references in the same
# run: the seeds' wine examples 10-3 (XGBClassifier defaults) and 10-5
# (LightGBM, 150 leaves) and XGBClassifier on the breast-cancer data, and
# the seeds' grid search over a decision tree (examples/grid_search against
# scikit-learn's GridSearchCV with n_jobs=-1, benches/reference/grid_search.py), by
# examples/gbdt_wine (median of five fits, inside the job) and by XGBoost
# and LightGBM themselves (benches/reference/gbdt_wine.py, median of five
# fits), installed from PyPI into the venv the other benchmarks use,
# /var/tmp/wray-bench-venv, the first time. Last, boosting on a synthetic
# HIGGS-shaped table of 1 M rows × 28 features (benches/reference/gbdt_higgs.py
# writes it to /var/tmp/wray-bench-data once): benches/gbdt_bench in one
# process and on 2 worker actors against XGBoost's hist on 2 threads.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=/var/tmp/wray-bench-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import xgboost, lightgbm, sklearn" 2>/dev/null; then
    "$venv/bin/pip" install -q numpy scikit-learn xgboost lightgbm
fi
"$venv/bin/python" -c "import xgboost, lightgbm, sklearn; print('xgboost', xgboost.__version__, 'lightgbm', lightgbm.__version__, 'scikit-learn', sklearn.__version__)"
cargo build --release -q -p wray-cli
job=$(target/release/wray build examples/gbdt_wine | tail -n1)
grid=$(target/release/wray build examples/grid_search | tail -n1)
for run in 1 2 3; do
    echo "## run $run"
    for args in "" "--lightgbm" "--dataset breast-cancer"; do
        # shellcheck disable=SC2086 # the flags are words
        echo "wray ${args:-(XGBoost defaults)}: $(target/release/wray run --dir examples/data::/data "$job" -- --repeat 5 $args \
            | grep -E '^(executed|accuracy)' | tr '\n' ' ')"
    done
    "$venv/bin/python" benches/reference/gbdt_wine.py examples/data
    echo "wray grid search: $(target/release/wray run --dir examples/data::/data "$grid" -- --top 0 \
        | grep -E '^(executed|best params|test accuracy)' | tr '\n' ' ')"
    "$venv/bin/python" benches/reference/grid_search.py examples/data/winequality-red.csv
done

echo "## 1 M rows x 28 features, 20 rounds"
data=/var/tmp/wray-bench-data
mkdir -p "$data"
if [ ! -f "$data/higgs_1m.f32" ]; then
    "$venv/bin/python" benches/reference/gbdt_higgs.py make "$data/higgs_1m.f32"
fi
higgs=$(target/release/wray build benches/gbdt_bench | tail -n1)
target/release/wray run --dir "$data::/data" "$higgs" -- /data/higgs_1m.f32 20
"$venv/bin/python" benches/reference/gbdt_higgs.py xgboost "$data/higgs_1m.f32" 20
