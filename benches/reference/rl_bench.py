"""The RL benchmark's references (benches/rl.sh): Gymnasium's CartPole-v1
stepped from Python with random actions, and RLlib's PPO on CartPole-v1
until the mean return of the last 100 episodes reaches 450 (or 300k env
steps), also printing when RLlib's own episode_return_mean (the mean of one
iteration's episodes) first did, with 1 or 2 env runners,
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


def _log_return(*, episode, metrics_logger, **kw):
    # Every episode's return, for the 100-episode window: RLlib 2.60's own
    # episode_return_mean averages only the episodes of one iteration (its
    # env runners clear their window of 100 at each iteration's reduce).
    metrics_logger.log_value("episode_returns", episode.get_return(), reduce="item_series")


def ppo(runners, seed):
    try:
        import torch  # noqa: F401
    except ImportError:
        print("RLlib PPO: not run (torch is not installed here)")
        return
    from collections import deque

    import ray
    from ray.rllib.algorithms.ppo import PPOConfig
    wall = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    config = (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=runners)
        .training(lr=0.0003, num_epochs=6, vf_loss_coeff=0.01)
        .callbacks(on_episode_end=_log_return)
        .debugging(seed=seed)
    )
    algo = config.build_algo()
    start = time.perf_counter()
    steps, window, own = 0, deque(maxlen=100), None
    while True:
        result = algo.train()
        env = result.get("env_runners", {})
        steps = result.get("num_env_steps_sampled_lifetime", env.get("num_env_steps_sampled_lifetime", 0))
        if own is None and env.get("episode_return_mean", float("nan")) >= 450:
            own = (steps, time.perf_counter() - start)
        window.extend(float(r) for r in env.get("episode_returns", []))
        mean = sum(window) / len(window) if window else float("nan")
        if mean >= 450 or steps >= 300_000:
            break
    train = time.perf_counter() - start
    first = (f"its episode_return_mean (one iteration's episodes) >= 450 after {own[0]} env steps, {own[1]:.2f} s; "
             if own else "its episode_return_mean never >= 450; ")
    print(f"RLlib {ray.__version__} PPO, {runners} env runners, seed {seed}: {first}"
          f"100-episode mean {'reached' if mean >= 450 else 'did not reach 450, at'} {mean:.1f} after {steps} env steps, "
          f"{train:.2f} s training ({time.perf_counter() - wall:.2f} s with startup)")
    algo.stop()
    ray.shutdown()


if __name__ == "__main__":
    if sys.argv[1] == "env":
        env_steps(int(sys.argv[2]))
    else:
        ppo(int(sys.argv[2]), int(sys.argv[3]))
