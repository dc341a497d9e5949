"""Ray Serve reference for benches/serve.sh: the same two deployments wray's
examples serve, two replicas each, on Ray Serve's HTTP proxy (port 8000).

* /noop    returns {"ok": true}
* /predict the wine-quality MLP: scikit-learn's MLPClassifier (11 -> 10 -> 8
           -> 1, as the seeds' network), trained on the UCI red-wine data
           (target quality >= 6, features standardised), JSON features in,
           class and probability out, as examples/serve_wine answers.

Serves one of them at a time (Ray gives each replica a CPU by default, and
the machine has two), until killed; prints "BENCH-READY" once it answers.
Usage: serve_bench.py noop|wine DATA_CSV
"""

import sys
import time
import urllib.request

import numpy as np
import ray
from ray import serve
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

which, csv = sys.argv[1], sys.argv[2]


def train():
    data = np.genfromtxt(csv, delimiter=",", skip_header=1)
    x, quality = data[:, :11], data[:, 11]
    y = (quality >= 6).astype(int)
    scaler = StandardScaler().fit(x)
    model = MLPClassifier(hidden_layer_sizes=(10, 8), max_iter=300, random_state=0).fit(scaler.transform(x), y)
    return scaler, model


@serve.deployment(num_replicas=2)
class Noop:
    async def __call__(self, request):
        return {"ok": True}


@serve.deployment(num_replicas=2)
class Wine:
    def __init__(self):
        self.scaler, self.model = train()

    async def __call__(self, request):
        body = await request.json()
        x = np.asarray(body["features"], dtype=float).reshape(1, -1)
        p = self.model.predict_proba(self.scaler.transform(x))[0]
        cls = int(p[1] >= 0.5)
        label = "quality >= 6" if cls else "quality < 6"
        return {"class": cls, "label": label, "probability": float(p[cls])}


ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
if which == "noop":
    serve.run(Noop.bind(), name="noop", route_prefix="/noop")
    urllib.request.urlopen("http://127.0.0.1:8000/noop").read()
else:
    serve.run(Wine.bind(), name="wine", route_prefix="/predict")
    body = b'{"features": [7.4, 0.7, 0.0, 1.9, 0.076, 11.0, 34.0, 0.9978, 3.51, 0.56, 9.4]}'
    urllib.request.urlopen("http://127.0.0.1:8000/predict", data=body).read()
print("BENCH-READY", flush=True)
while True:
    time.sleep(3600)
