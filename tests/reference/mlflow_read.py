"""Reads an MLflow file store written by wray's MlflowLogger with MLflow
itself, and prints its experiments, runs and one metric's history — the
check that `mlflow ui` will list them. Needs `pip install mlflow-skinny`
(MLflow 3 wants MLFLOW_ALLOW_FILE_STORE=true for file stores):

    MLFLOW_ALLOW_FILE_STORE=true python3 tests/reference/mlflow_read.py DIR/mlruns total

Run by hand on 2026-12-03 against the `train-loop` scenario's store, it
printed: [('0', 'loop')], the run `loop` FINISHED with its last metrics, and
total's history [(1, 499500.0), (2, 1498500.0), (3, 2997000.0),
(4, 4995000.0), (5, 7492500.0)].
"""
import sys
from mlflow.tracking import MlflowClient

store, metric = sys.argv[1], sys.argv[2]
client = MlflowClient(tracking_uri=f"file://{store}")
experiments = client.search_experiments()
print([(e.experiment_id, e.name) for e in experiments])
for run in client.search_runs([e.experiment_id for e in experiments]):
    print(run.info.run_name, run.info.status, dict(run.data.metrics))
    print([(m.step, m.value) for m in client.get_metric_history(run.info.run_id, metric)])
