# Runs python_bench.py under Ray (RAY_PYTHON) and as a wray job (WRAY,
# JOB) in one sitting and prints one Markdown table: each workload's rate,
# process start to first result, and the idle memory of all of a job's
# processes. Standard library only. Called by benches/python.sh.
#
#   python3 python_compare.py RAY_PYTHON WRAY JOB
import json
import os
import subprocess
import sys
import time

ray_python, wray, job = sys.argv[1:4]
here = os.path.dirname(os.path.abspath(__file__))
script = os.path.join(here, "python_bench.py")
ROUNDS = int(os.environ.get("ROUNDS", "3"))


def ray_cmd(*args):
    return [ray_python, script, *args]


def wray_cmd(*args, flags=()):
    return [wray, "run", "--cpus", "2", *flags, job, "--", *args]


def rows(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return {r["workload"]: r for r in (json.loads(l) for l in out.splitlines() if l.startswith("{"))}


def first_result(cmd):
    """Seconds from launching the process to its first result line."""
    start = time.perf_counter()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as p:
        for line in p.stdout:
            if line.startswith("{"):
                elapsed = time.perf_counter() - start
                break
        else:
            raise SystemExit(f"{cmd} printed no result")
        p.wait()
    return elapsed


def session_rss(sid):
    """Resident memory (bytes) of every process in session `sid`."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[3]) != sid:  # session id
                continue
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
    return total


def idle_memory(cmd):
    """RSS of all the job's processes, 2 s after it became ready."""
    with subprocess.Popen(cmd + [], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                          start_new_session=True) as p:
        for line in p.stdout:
            if line.startswith("{"):
                break
        time.sleep(2.0)
        rss = session_rss(p.pid)
        p.kill()
        p.wait()
    # Ray leaves its raylet and GCS behind a killed driver: stop them.
    subprocess.run([os.path.join(os.path.dirname(ray_python), "ray"), "stop", "--force"],
                   capture_output=True)
    return rss


def best(values, higher):
    return max(values) if higher else min(values)


ray_rates, wray_rates = {}, {}
for _ in range(ROUNDS):
    for name, r in rows(ray_cmd("all")).items():
        ray_rates.setdefault(name, []).append(r["value"])
    for name, r in rows(wray_cmd("all")).items():
        wray_rates.setdefault(name, []).append(r["value"])
ray_first = [first_result(ray_cmd("first")) for _ in range(ROUNDS)]
wray_first = [first_result(wray_cmd("first")) for _ in range(ROUNDS)]
ray_idle = idle_memory(ray_cmd("idle", "6"))
wray_idle = idle_memory(wray_cmd("idle", "6"))
# The same job told that it uses no GPU (Ray finds none on a machine
# without one; wray by default loads the Vulkan drivers to look, and
# lavapipe's LLVM stays mapped).
wray_idle_nogpu = idle_memory(wray_cmd("idle", "6", flags=("--gpus", "0")))

names = {
    "tasks_sync": "Python task round trip (submit + get, one at a time)",
    "tasks_async": "1,000 Python tasks, submitted then got",
    "actor_sync": "Python actor calls, one at a time",
    "actor_async": "1,000 Python actor calls, submitted then got",
}
print(f"| workload | wray | Ray {os.environ.get('RAY_VERSION', '2.60')} | wray vs Ray |")
print("|---|---:|---:|---:|")
for key, label in names.items():
    w, r = best(wray_rates[key], True), best(ray_rates[key], True)
    print(f"| {label} | {w:,.0f} /s | {r:,.0f} /s | {w / r:.1f}× |")
w, r = best(wray_first, False), best(ray_first, False)
print(f"| process start → first task result | {w * 1000:,.0f} ms | {r * 1000:,.0f} ms | {r / w:.1f}× |")
print(f"| memory of an idle job, all its processes | {wray_idle / 2**20:,.0f} MiB | {ray_idle / 2**20:,.0f} MiB | {ray_idle / wray_idle:.1f}× |")
print(f"| the same, wray with --gpus 0 (no Vulkan driver loaded) | {wray_idle_nogpu / 2**20:,.0f} MiB | {ray_idle / 2**20:,.0f} MiB | {ray_idle / wray_idle_nogpu:.1f}× |")
print()
print(f"Best of {ROUNDS} rounds each, alternating Ray and wray; wray with --cpus 2 on this machine's 2 cores.")
