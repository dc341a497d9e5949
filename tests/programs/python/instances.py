# How a Python job's tasks share instances (docs/PYTHON.md, "Speed"): a
# task's instance, once its task succeeded, runs the job's next task, as a
# Ray worker process does — module-level state persists between them. A
# failed task's instance is dropped, instances are kept per memory limit,
# and nothing is shared between jobs.
import importlib
import os

# Ray's own import: the SDK's `ray` package is `wray` itself.
import ray
from ray.util.queue import Queue
import wray

calls = 0


@ray.remote
def bump():
    global calls
    calls += 1
    return calls


@ray.remote
def fail():
    global calls
    calls += 100
    raise ValueError("boom")


@ray.remote
def gpu_ids():
    return ray.get_gpu_ids()


@ray.remote
def env_of(*names):
    return [os.environ.get(n) for n in names]


@ray.remote
def nested_env():
    return ray.get(env_of.remote("OWN", "JOBWIDE"))


@ray.remote
class EnvActor:
    def read(self, name):
        return os.environ.get(name)


def environments():
    # runtime_env's env_vars: over the job's granted variables (--env), kept
    # apart between reused instances, job-wide through init, inherited by
    # what a task starts, on actors; other fields refused.
    print("env, granted:", ray.get(env_of.remote("GRANTED", "OWN")))
    own = env_of.options(runtime_env={"env_vars": {"OWN": "a", "GRANTED": "task"}})
    print("env, the task's own:", ray.get(own.remote("GRANTED", "OWN")))
    print("env, the next plain task:", ray.get(env_of.remote("GRANTED", "OWN")))
    ray.init(runtime_env={"env_vars": {"JOBWIDE": "yes"}})
    print("env, job-wide:", ray.get(env_of.remote("JOBWIDE", "OWN")))
    outer = nested_env.options(runtime_env={"env_vars": {"OWN": "outer"}})
    print("env, inherited:", ray.get(outer.remote()))
    actor = EnvActor.options(runtime_env={"env_vars": {"OWN": "actor"}}).remote()
    print("env, an actor's:", ray.get(actor.read.remote("OWN")), ray.get(actor.read.remote("JOBWIDE")))
    try:
        env_of.options(runtime_env={"pip": ["numpy"]}).remote()
    except ValueError as e:
        print("env, pip:", e)
    try:
        env_of.options(runtime_env={"env_vars": {"A=B": "1"}}).remote()
    except ray.exceptions.InvalidArgumentError as e:
        print("env, a bad name:", e)


def main():
    print("one after another:", [ray.get(bump.remote()) for _ in range(5)])
    try:
        ray.get(fail.remote())
    except ray.exceptions.RayTaskError:
        print("failed task: its instance is dropped")
    print("after the failure:", ray.get(bump.remote()))
    limited = bump.options(memory=512 << 20)
    print("another memory limit:", [ray.get(limited.remote()) for _ in range(3)])
    print("back to the first:", ray.get(bump.remote()))
    print("in the driver:", calls)
    # max_calls: an instance runs the function at most twice, then a fresh
    # one takes over (the first run here is in the instance above).
    capped = bump.options(max_calls=2)
    print("max_calls=2:", [ray.get(capped.remote()) for _ in range(5)])
    environments()
    try:
        importlib.import_module("ray.data")
    except ModuleNotFoundError as e:
        missing = str(e)
    print("import ray:", ray is wray, Queue is wray.util.queue.Queue, ray.exceptions is wray.exceptions, missing)
    print("version:", ray.__version__ == wray.__version__, ray.__version__.count(".") == 2)
    print("gpu ids:", ray.get_gpu_ids(), ray.get(gpu_ids.remote()), ray.get(gpu_ids.options(num_gpus=1).remote()))
