#!/usr/bin/env bash
# The serve benchmark of docs/BENCHMARKS.md, reference in the same run:
# wrk (Debian's) against `wray serve run` and against Ray Serve 2.60
# (benches/reference/serve_bench.py), two replicas per deployment, the
# no-op deployment and the wine-quality MLP, 1 and 64 connections, 10 s per
# point, one wrk thread (the load generator shares the machine's 2 cores
# with the server). The no-op deployment also as a Python job
# (benches/serve_noop.py, the reference's own class), to set Python beside
# Python. Prints wrk's report for each point and the servers' memory
# (resident set of the wray process, which holds the replicas; summed over
# Ray's processes for Ray).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=/var/tmp/wray-bench-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import ray.serve, sklearn" 2>/dev/null; then
    "$venv/bin/pip" install -q "ray[serve]==2.60.0" scikit-learn
fi
if ! command -v wrk >/dev/null; then
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    $sudo apt-get install -y --no-install-recommends wrk >/dev/null
fi
"$venv/bin/python" -c "import ray; print('ray', ray.__version__)"
cargo build --release -q -p wray-cli
wray=target/release/wray
hello=$($wray build examples/serve_hello | tail -n1)
wine=$($wray build examples/serve_wine | tail -n1)
trainer=$($wray build examples/wine_mlp | tail -n1)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
python_noop=$($wray build benches/serve_noop.py -o "$work/serve_noop.wasm" | tail -n1)
$wray run --dir examples/data::/data --dir "$work::/models" "$trainer" -- --save /models/wine.json | tail -n2
cat > "$work/predict.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"features": [7.4, 0.7, 0.0, 1.9, 0.076, 11.0, 34.0, 0.9978, 3.51, 0.56, 9.4]}'
LUA
echo 'wrk.method = "GET"' > "$work/get.lua"

body='{"features": [7.4, 0.7, 0.0, 1.9, 0.076, 11.0, 34.0, 0.9978, 3.51, 0.56, 9.4]}'
# wrk_point NAME CONNECTIONS URL SCRIPT: one sample answer, then wrk.
wrk_point() {
    echo "### $1, $2 connection(s)"
    if [ "$4" = predict ]; then curl -s -d "$body" "$3"; else curl -s "$3"; fi
    echo
    wrk -t1 -c"$2" -d10s --latency --timeout 2s -s "$work/$4.lua" "$3" | grep -E "Latency|50%|99%|Requests/sec|Non-2xx|Socket errors|requests in"
}

wait_for() {
    for _ in $(seq 1 600); do
        if curl -sf "$1" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    echo "$1 never answered" >&2
    return 1
}

rss_of() { ps -o rss= -p "$1" | awk '{printf "%.0f MiB\n", $1/1024}'; }

# wray_app LOG READY_URL ARGS...: `wray serve run` of ARGS on port 8100,
# stderr to LOG, waiting until READY_URL answers; wray_stop ends it.
wray_app() {
    local log=$1 ready=$2
    shift 2
    $wray serve run --port 8100 "$@" 2>"$work/$log" &
    pid=$!
    wait_for "$ready"
}
wray_stop() { kill -INT $pid; wait $pid || true; }

echo "## wray serve"
wray_app hello.log http://127.0.0.1:8100/noop "$hello"
wrk_point "wray no-op" 1 http://127.0.0.1:8100/noop get
wrk_point "wray no-op" 64 http://127.0.0.1:8100/noop get
echo "wray process (2 Hello + 2 Noop replicas): $(rss_of $pid)"
wray_stop
wray_app wine.log http://127.0.0.1:8100/-/healthz --dir "$work::/models" "$wine" -- --model /models/wine.json
sleep 1
wrk_point "wray wine MLP" 1 http://127.0.0.1:8100/predict predict
wrk_point "wray wine MLP" 64 http://127.0.0.1:8100/predict predict
echo "wray process (2 WineModel + 1 Preprocessor + 1 WineBatch replicas): $(rss_of $pid)"
wray_stop
# Compiled into the cache first (`wray run` compiles it, then refuses to
# serve): the memory figure is then the server's, not the compiler's.
$wray run "$python_noop" >/dev/null 2>&1 || true
wray_app python.log http://127.0.0.1:8100/noop "$python_noop"
wrk_point "wray no-op, Python" 1 http://127.0.0.1:8100/noop get
wrk_point "wray no-op, Python" 64 http://127.0.0.1:8100/noop get
echo "wray process (2 Python Noop replicas): $(rss_of $pid)"
wray_stop

echo "## Ray Serve"
# ray_app APP: starts the reference serving APP, waits until it answers.
ray_app() {
    "$venv/bin/python" benches/reference/serve_bench.py "$1" examples/data/winequality-red.csv >"$work/ray-$1.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 900); do grep -q BENCH-READY "$work/ray-$1.log" && return 0; sleep 0.2; done
    cat "$work/ray-$1.log"
    return 1
}
ray_memory() {
    echo "Ray processes: $(ps -eo rss,cmd | grep -E 'ray::|raylet|gcs_server|serve_bench' | grep -v grep | awk '{s+=$1} END {printf "%.0f MiB\n", s/1024}')"
}
ray_stop() {
    kill $pid; wait $pid 2>/dev/null || true
    "$venv/bin/ray" stop --force >/dev/null 2>&1 || true
}
ray_app noop
wrk_point "Ray Serve no-op" 1 http://127.0.0.1:8000/noop get
wrk_point "Ray Serve no-op" 64 http://127.0.0.1:8000/noop get
ray_memory
ray_stop
ray_app wine
wrk_point "Ray Serve wine MLP" 1 http://127.0.0.1:8000/predict predict
wrk_point "Ray Serve wine MLP" 64 http://127.0.0.1:8000/predict predict
ray_memory
ray_stop
