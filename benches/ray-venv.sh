# Sourced by the benchmark scripts that measure Ray beside wray: the venv
# kept outside the clone with Ray 2.60 and numpy, installed the first time.
venv=/var/tmp/wray-bench-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import ray, numpy" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "ray==2.60.*" numpy
fi
