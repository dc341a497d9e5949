"""Reference for benches/gbdt.sh: the seeds' boosted-tree examples 10-3 and
10-5 (XGBClassifier(random_state=1); LightGBM with 150 leaves, learning rate
0.05, 200 bins, 100 rounds) on the wine data — good quality is quality >= 6,
StandardScaler on every row, train_test_split(test_size=0.25,
random_state=0) — and XGBClassifier on the breast-cancer data the same way.

Prints one line per model: `<name> fit <s> accuracy <acc>`; fit is the
median of five fits (the first one warms up the library).
"""
import sys, time, statistics, warnings
warnings.filterwarnings("ignore")
import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
import xgboost as xgb
import lightgbm as lgb

def load(path, wine):
    data = np.loadtxt(path, delimiter=",", skiprows=1)
    x, t = data[:, :-1], data[:, -1]
    y = (t >= 6).astype(int) if wine else t.astype(int)
    return train_test_split(StandardScaler().fit_transform(x), y, test_size=0.25, random_state=0)

def timed(fit):
    times, model = [], None
    for _ in range(5):
        t = time.perf_counter()
        model = fit()
        times.append(time.perf_counter() - t)
    return statistics.median(times), model

data_dir = sys.argv[1]
xtr, xte, ytr, yte = load(f"{data_dir}/winequality-red.csv", True)
fit, m = timed(lambda: xgb.XGBClassifier(random_state=1).fit(xtr, ytr))
print(f"xgboost-wine fit {fit:.3f} accuracy {(m.predict(xte) == yte).mean():.4f}")
param = {"num_leaves": 150, "objective": "binary", "learning_rate": .05, "max_bin": 200, "verbose": -1}
fit, m = timed(lambda: lgb.train(param, lgb.Dataset(xtr, label=ytr), 100))
print(f"lightgbm-wine fit {fit:.3f} accuracy {((m.predict(xte) >= .5).astype(int) == yte).mean():.4f}")
xtr, xte, ytr, yte = load(f"{data_dir}/breast_cancer.csv", False)
fit, m = timed(lambda: xgb.XGBClassifier(random_state=1).fit(xtr, ytr))
print(f"xgboost-breast-cancer fit {fit:.3f} accuracy {(m.predict(xte) == yte).mean():.4f}")
