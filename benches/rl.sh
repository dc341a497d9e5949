#!/usr/bin/env bash
# The RL benchmark of docs/BENCHMARKS.md, references in the same run:
# CartPole-v1 stepping speed (wray's built-in environment against
# Gymnasium's, stepped from Python, random actions), wray's sampling with
# PPO's policy acting, PPO's time to a mean return of 450 with 1 and 2 env
# runners against RLlib's PPO (benches/reference/rl_bench.py), three seeds
# each, and wray's DQN to 450 with 1 and 2 runners. Gymnasium, RLlib and torch (PyPI's build; its CUDA libraries
# come along but no GPU is used) are installed into the venv the other
# benchmarks use, /var/tmp/wray-bench-venv, the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=/var/tmp/wray-bench-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import gymnasium, ray.rllib, torch" 2>/dev/null; then
    "$venv/bin/pip" install -q gymnasium "ray[rllib]==2.60.0" torch
fi
"$venv/bin/python" -c "import gymnasium, ray, torch; print('gymnasium', gymnasium.__version__, 'ray', ray.__version__, 'torch', torch.__version__)"
cargo build --release -q -p wray-cli
job=$(target/release/wray build benches/rl_bench | tail -n1)
echo "## CartPole-v1 steps per second"
for run in 1 2 3; do
    target/release/wray run "$job" -- env 2000000
    "$venv/bin/python" benches/reference/rl_bench.py env 200000
done
target/release/wray run "$job" -- sample 200000 1
target/release/wray run "$job" -- sample 200000 8
echo "## PPO on CartPole-v1 to a mean return of 450 (over 100 episodes, and over one iteration's episodes as RLlib 2.60 reports it)"
for runners in 1 2; do
    for seed in 0 1 2; do
        target/release/wray run "$job" -- ppo "$runners" "$seed"
        "$venv/bin/python" benches/reference/rl_bench.py ppo "$runners" "$seed" 2>/dev/null | grep -E '^RLlib'
    done
done
echo "## DQN on CartPole-v1 to a mean return of 450"
for runners in 1 2; do
    for seed in 0 1 2; do
        target/release/wray run "$job" -- dqn "$runners" "$seed"
    done
done
