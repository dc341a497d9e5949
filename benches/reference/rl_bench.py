"""The RL benchmark's references (benches/rl.sh): Gymnasium's CartPole-v1
stepped from Python with random actions, and RLlib's PPO on CartPole-v1
until a mean return of 450 (or 300k env steps), with 1 or 2 env runners,
using the settings of RLlib's tuned CartPole example
(rllib/tuned_examples/ppo/cartpole_ppo.py: lr 3e-4, 6 epochs, vf_loss_coeff
0.01) — RLlib needs torch; without it that part says so.

    python3 benches/reference/rl_bench.py env STEPS
    python3 benches/reference/rl_bench.py ppo RUNNERS SEED
"""
import sys
import time

import numpy as np


def env_steps(steps):
    import gymnasium as gym
    env = gym.make("CartPole-v1")
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    actions = rng.integers(0, 2, size=steps)
    episodes = 0
    start = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(int(a))
        if terminated or truncated:
            env.reset()
            episodes += 1
    secs = time.perf_counter() - start
    print(f"Gymnasium {gym.__version__} CartPole-v1, random actions: {steps / secs:.0f} steps/s "
          f"({steps} steps, {episodes} episodes, {secs:.3f} s)")


def ppo(runners, seed):
    try:
        import torch  # noqa: F401
    except ImportError:
        print("RLlib PPO: not run (torch is not installed here)")
        return
    import ray
    from ray.rllib.algorithms.ppo import PPOConfig
    wall = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    config = (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=runners)
        .training(lr=0.0003, num_epochs=6, vf_loss_coeff=0.01)
        .debugging(seed=seed)
    )
    algo = config.build_algo()
    start = time.perf_counter()
    steps, ret = 0, float("nan")
    while True:
        result = algo.train()
        env = result.get("env_runners", {})
        ret = env.get("episode_return_mean", float("nan"))
        steps = result.get("num_env_steps_sampled_lifetime", env.get("num_env_steps_sampled_lifetime", 0))
        if ret >= 450 or steps >= 300_000:
            break
    train = time.perf_counter() - start
    print(f"RLlib {ray.__version__} PPO, {runners} env runners, seed {seed}: "
          f"{'reached' if ret >= 450 else 'did not reach 450, at'} {ret:.1f} after {steps} env steps, "
          f"{train:.2f} s training ({time.perf_counter() - wall:.2f} s with startup)")
    algo.stop()
    ray.shutdown()


if __name__ == "__main__":
    if sys.argv[1] == "env":
        env_steps(int(sys.argv[2]))
    else:
        ppo(int(sys.argv[2]), int(sys.argv[3]))
