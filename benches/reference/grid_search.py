"""Reference for benches/gbdt.sh's grid search: the seeds' example run by
scikit-learn with n_jobs=-1 (joblib's processes; the seeds ran it on Ray's
joblib backend) — GridSearchCV(DecisionTreeClassifier(random_state=1),
max_depth 10..19 x max_features 3..10, accuracy, 5 folds) on the wine data
(quality >= 6, StandardScaler on every row, train_test_split(test_size=0.25,
random_state=0)), fitted twice as the seeds do, both fits timed.

Prints `sklearn-grid-search fit <s> best <params> cv <mean> test <accuracy>`.
"""
import sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np
from sklearn.model_selection import train_test_split, GridSearchCV
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

data = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1)
x, y = StandardScaler().fit_transform(data[:, :-1]), (data[:, -1] >= 6).astype(int)
xtr, xte, ytr, yte = train_test_split(x, y, test_size=.25, random_state=0)
param_model = {"max_depth": range(10, 20), "max_features": range(3, 11)}
start = time.time()
mode = GridSearchCV(DecisionTreeClassifier(random_state=1), param_grid=param_model, scoring="accuracy", n_jobs=-1)
model = mode.fit(xtr, ytr)
model = model.fit(xtr, ytr)
fit = time.time() - start
tree = model.best_estimator_.tree_
print(f"sklearn-grid-search fit {fit:.3f} nodes {tree.node_count} max_depth {tree.max_depth} "
      f"best {model.best_params_} cv {model.best_score_:.4f} test {(model.predict(xte) == yte).mean():.4f}")
