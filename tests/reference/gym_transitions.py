"""Reference transitions of Gymnasium's classic-control environments, for
wray::rl's built-in ones (guest-sdk/libs/rl/src/envs). For each environment
and seed: reset, then step with actions drawn from a seeded NumPy generator
until the episode ends (terminated or truncated by the registered time
limit), recording per step the unwrapped state before, the action, the
state after, the observation, the reward and the flags. One JSON object per
line (floats as Python writes them, which round-trip exactly):

    python3 tests/reference/gym_transitions.py > tests/data/gym_transitions.jsonl

Written with gymnasium 1.4.0 and numpy 2.4 (benches/rl.sh installs them).
"""
import json
import numpy as np
import gymnasium as gym

ENVS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1"]
for env_id in ENVS:
    for seed in range(3):
        env = gym.make(env_id)
        obs, _ = env.reset(seed=seed)
        actions = np.random.default_rng(100 + seed)
        steps = []
        # MountainCar and Acrobot rarely end by chance; on seeds 1 and 2 a
        # policy pushing with the velocity reaches the goal.
        while True:
            before = [float(x) for x in env.unwrapped.state]
            if env_id == "Pendulum-v1":
                action = [float(np.float32(actions.uniform(-2.0, 2.0)))]
                step_action = np.array(action, dtype=np.float32)
            elif env_id == "MountainCar-v0" and seed > 0:
                action = 2 if before[1] >= 0 else 0
                step_action = action
            elif env_id == "Acrobot-v1" and seed > 0:
                action = 2 if before[3] >= 0 else 0
                step_action = action
            else:
                action = int(actions.integers(env.action_space.n))
                step_action = action
            obs, reward, terminated, truncated, _ = env.step(step_action)
            steps.append({
                "before": before,
                "action": action,
                "after": [float(x) for x in env.unwrapped.state],
                "obs": [float(x) for x in obs],
                "reward": float(reward),
                "terminated": bool(terminated),
                "truncated": bool(truncated),
            })
            if terminated or truncated:
                break
        print(json.dumps({"env": env_id, "seed": seed, "steps": steps}))
