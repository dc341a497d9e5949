"""Reference for the wine MLP: scikit-learn's MLPClassifier with the seeds'
architecture on the same split (train_test_split test_size=0.25,
random_state=0, StandardScaler fit on the training rows).

Prints `sklearn fit <s> epochs <n> epoch_ms <ms> accuracy <acc>`, first
with scikit-learn's defaults (Adam, batches of 200), then with the seeds'
optimiser (SGD lr 0.01, momentum 0.9, batches of 32). With `--defaults-only`
the second fit is skipped, so that the script timed start to finish (Python,
imports, reading, one fit) compares with a whole `wray run`.
"""
import sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.neural_network import MLPClassifier

data = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1)
x, y = data[:, :-1], (data[:, -1] >= 6).astype(int)
xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, random_state=0)
s = StandardScaler().fit(xtr)
fits = [
    ("sklearn-defaults", {}),
    ("sklearn-sgd-32", dict(solver="sgd", learning_rate_init=0.01, momentum=0.9, nesterovs_momentum=False, batch_size=32)),
]
if "--defaults-only" in sys.argv[2:]:
    fits = fits[:1]
for label, kw in fits:
    m = MLPClassifier(hidden_layer_sizes=(10, 8), max_iter=500, random_state=0, **kw)
    t = time.perf_counter()
    m.fit(s.transform(xtr), ytr)
    fit = time.perf_counter() - t
    print(f"{label} fit {fit:.3f} epochs {m.n_iter_} epoch_ms {fit * 1000 / m.n_iter_:.2f} accuracy {m.score(s.transform(xte), yte):.4f}")
