# The first Ray Core example of "Learning Ray" (the seeds' 002): retrieving
# items from a slow database, one after another and then as tasks — the
# book's code with `import wray as ray` in place of `import ray`.
#
#   wray build examples/python/retrieve.py
#   wray run --cpus 8 examples/python/retrieve.wasm
#
# Item i takes i/10 s: 2.8 s one after the other; as tasks (one CPU each,
# as in Ray: give the runtime eight), about as long as the slowest, 0.7 s.
import time
import wray as ray
# 初始化 Ray
ray.init()
database = [
    "Learning", "Ray",
    "Flexible", "Distributed", "Python", "for", "Machine", "Learning"
]
def retrieve(item):
    time.sleep(item / 10.)
    return item, database[item]
@ray.remote
def retrieve_task(item):
    return retrieve(item)

start = time.time()
sequential = [retrieve(item) for item in range(8)]
print(f'Sequential runtime: {time.time() - start:.2f} seconds')

start = time.time()
data = [retrieve_task.remote(item) for item in range(8)]
results = ray.get(data)
print(f'Runtime: {time.time() - start:.2f} seconds, data:')
for result in results:
    print(result)
assert results == sequential
