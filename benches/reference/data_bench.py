"""Ray Data reference for benches/data.sh: the same two pipelines as
`data_walkthrough -- --bench`, with Ray's defaults, three runs each."""
import time

import numpy as np
import ray

ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
for run in (1, 2, 3):
    start = time.perf_counter()
    ds = ray.data.range(1_000_000).map(lambda r: {"id": r["id"], "value": r["id"] * 2.0}).filter(
        lambda r: r["id"] % 2 == 0
    ).materialize()
    n = ds.count()
    rows = ds.take_all()
    rows_s = time.perf_counter() - start
    assert n == len(rows) == 500_000
    start = time.perf_counter()
    ds = ray.data.range(1_000_000).map_batches(
        lambda b: {"id": b["id"] * 2}, batch_size=4096, batch_format="numpy"
    ).map_batches(lambda b: {"id": b["id"] + 1}, batch_size=4096, batch_format="numpy").materialize()
    total = ds.sum("id")
    batches_s = time.perf_counter() - start
    assert total == 1_000_000 * 999_999 + 1_000_000
    print(f"ray run {run}: row pipeline {rows_s:.4f} s, map_batches {batches_s:.4f} s", flush=True)
