"""Reference for the Tune benchmark: Ray Tune, 200 trials x up to 30 reports
of the trivial objective, with ASHA and with FIFO, `reuse_actors=True` (Ray's
fastest setting). Prints `ray <scheduler>: <seconds> s`.
"""
import time, os
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler


def objective(config):
    for step in range(1, 31):
        tune.report({"score": config["weight"] * step ** 0.5 + config["bias"]})


ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
space = {"weight": tune.uniform(0, 1), "bias": tune.uniform(0, 1)}
for name, scheduler in [("asha", ASHAScheduler(max_t=30, grace_period=1, reduction_factor=4)), ("fifo", FIFOScheduler())]:
    start = time.perf_counter()
    tune.run(objective, config=space, num_samples=200, metric="score", mode="min", scheduler=scheduler,
             reuse_actors=True, verbose=0)
    print(f"ray {name}: {time.perf_counter() - start:.1f} s", flush=True)
