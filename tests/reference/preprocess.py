"""Reference values for wray::train's preprocessors: scikit-learn's
transformers on tests/data/preprocess.csv, printed one line per output
column (values with 6 decimals, -0 printed as 0). The testjob scenario
`train-preprocess` prints the same lines from wray; the test compares them
with tests/data/preprocess_sklearn.txt, which this script wrote:

    python3 tests/reference/preprocess.py > tests/data/preprocess_sklearn.txt
"""
import csv, os
import numpy as np
from sklearn.preprocessing import (StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler, Normalizer,
                                   OrdinalEncoder, OneHotEncoder, LabelEncoder)
from sklearn.impute import SimpleImputer

path = os.path.join(os.path.dirname(__file__), "..", "data", "preprocess.csv")
rows = list(csv.DictReader(open(path)))
num = lambda c: np.array([float(r[c]) if r[c] != "" else np.nan for r in rows])
text = lambda c: np.array([r[c] for r in rows], dtype=object)
xy = np.column_stack([num("x"), num("y")])

def show(label, values):
    cells = []
    for v in values:
        s = f"{float(v):.6f}"
        cells.append("0.000000" if s == "-0.000000" else s)
    print(f"{label}: {' '.join(cells)}")

for name, t in [("standard", StandardScaler()), ("minmax", MinMaxScaler()), ("maxabs", MaxAbsScaler()),
                ("robust", RobustScaler()), ("robust 10-90", RobustScaler(quantile_range=(10, 90)))]:
    out = t.fit_transform(xy)
    show(f"{name} x", out[:, 0]); show(f"{name} y", out[:, 1])
for norm in ["l2", "l1", "max"]:
    out = Normalizer(norm=norm).fit_transform(xy)
    show(f"normalizer {norm} x", out[:, 0]); show(f"normalizer {norm} y", out[:, 1])
color = text("color").reshape(-1, 1)
show("ordinal color", OrdinalEncoder().fit_transform(color)[:, 0])
onehot = OneHotEncoder()
out = onehot.fit_transform(color).toarray()
for i, name in enumerate(onehot.get_feature_names_out(["color"])):
    show(f"onehot {name}", out[:, i])
show("label", LabelEncoder().fit_transform(text("label")))
z = num("z").reshape(-1, 1)
show("impute mean z", SimpleImputer(strategy="mean").fit_transform(z)[:, 0])
show("impute most_frequent z", SimpleImputer(strategy="most_frequent").fit_transform(z)[:, 0])
show("impute median z", SimpleImputer(strategy="median").fit_transform(z)[:, 0])
show("impute constant z", SimpleImputer(strategy="constant", fill_value=-1.0).fit_transform(z)[:, 0])
# A chain: impute z by its mean, then standardise x and z.
xz = np.column_stack([num("x"), SimpleImputer(strategy="mean").fit_transform(z)[:, 0]])
out = StandardScaler().fit_transform(xz)
show("chain x", out[:, 0]); show("chain z", out[:, 1])
# Concatenator (Ray's; scikit-learn has none): x and y side by side, the
# matrix read back row by row.
show("concat x,y", xy.reshape(-1))
