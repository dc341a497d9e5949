"""The 1 M-row boosting benchmark's data and reference (benches/gbdt.sh).

`python gbdt_higgs.py make PATH` writes a synthetic HIGGS-shaped table —
1,000,000 rows of 28 float32 features (21 "low-level" standard normals and 7
"high-level" nonlinear combinations of them) and a 0/1 label drawn from a
logistic model of a nonlinear score — as raw little-endian float32, 29 values
per row, label last (seeded: the same file every time).

`python gbdt_higgs.py xgboost PATH ROUNDS` trains XGBoost's `hist` method on 2
threads (max_depth 6, eta 0.3, 256 bins — XGBClassifier's defaults) on the
first 900,000 rows and prints `xgboost-higgs rounds <n> seconds_per_round <s>
auc <auc>` with the AUC on the last 100,000.
"""
import sys, time
import numpy as np

ROWS, FEATURES = 1_000_000, 28

def make(path):
    rng = np.random.default_rng(7)
    low = rng.standard_normal((ROWS, 21), dtype=np.float32)
    high = np.stack([
        np.abs(low[:, 0] * low[:, 1]), np.sqrt(low[:, 2] ** 2 + low[:, 3] ** 2), np.tanh(low[:, 4] - low[:, 5]),
        low[:, 6] * low[:, 7] * low[:, 8], np.exp(-np.abs(low[:, 9])), np.maximum(low[:, 10], low[:, 11]),
        np.sin(low[:, 12]) + low[:, 13] ** 2 / 4,
    ], axis=1).astype(np.float32)
    x = np.concatenate([low, high], axis=1)
    score = (0.8 * high[:, 0] - 0.6 * high[:, 1] + 1.2 * high[:, 2] + 0.5 * low[:, 14] - 0.4 * low[:, 15] * low[:, 16]
             + 0.7 * high[:, 5] - 0.9 * high[:, 4] + 0.3 * high[:, 6])
    p = 1 / (1 + np.exp(-(score - score.mean())))
    y = (rng.random(ROWS) < p).astype(np.float32)
    np.concatenate([x, y[:, None]], axis=1).astype("<f4").tofile(path)

def xgboost(path, rounds):
    import xgboost as xgb
    from sklearn.metrics import roc_auc_score
    data = np.fromfile(path, dtype="<f4").reshape(ROWS, FEATURES + 1)
    x, y = data[:, :FEATURES], data[:, FEATURES]
    train = xgb.DMatrix(x[:900_000], label=y[:900_000], nthread=2)
    params = {"objective": "binary:logistic", "tree_method": "hist", "max_depth": 6, "eta": 0.3, "nthread": 2}
    start = time.perf_counter()
    model = xgb.train(params, train, num_boost_round=rounds)
    seconds = (time.perf_counter() - start) / rounds
    auc = roc_auc_score(y[900_000:], model.predict(xgb.DMatrix(x[900_000:], nthread=2)))
    print(f"xgboost-higgs rounds {rounds} seconds_per_round {seconds:.4f} auc {auc:.4f}")

if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        xgboost(sys.argv[2], int(sys.argv[3]))
