# How a Python job's tasks share instances (docs/PYTHON.md, "Speed"): a
# task's instance, once its task succeeded, runs the job's next task, as a
# Ray worker process does — module-level state persists between them. A
# failed task's instance is dropped, instances are kept per memory limit,
# and nothing is shared between jobs.
import wray as ray

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
