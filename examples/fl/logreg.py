#!/usr/bin/env python3
"""Logistic regression trained by federated averaging (FedAvg or FedProx).

One round at one node: reads the global weights (tensors "weight", one value
per feature, and "bias", one value) and params.json, trains params.epochs
epochs of gradient descent on the node's rows of params.table, and writes the
update and its metrics (see mosaic_fl).

params: table, target (0/1, or set positive), features (numeric columns),
epochs (default 5), lr (default 0.1), mu (FedProx, default 0), seed,
batch_size (default 0: the whole table), optional center and scale (one
number per feature, the same at every node). Rows with a missing value in the
target or a feature are left out.

Make the first global model with:
    python3 logreg.py init --features N --out global.safetensors
"""

import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
for _p in (os.environ.get("MOSAIC_FL_LIB", ""), _here, os.path.join(_here, "..", "..", "clients", "python")):
    if _p and os.path.exists(os.path.join(_p, "mosaic_fl.py")):
        sys.path.insert(0, _p)
        break

import numpy as np  # noqa: E402

import mosaic_fl as fl  # noqa: E402


def sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def log_loss(X, y, w, b):
    z = X @ w + b
    # log(1 + e^z) - y z, computed stably
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def train(X, y, w0, b0, epochs, lr, mu, batch, rng):
    w, b = w0.copy(), b0.copy()
    n = len(y)
    for _ in range(epochs):
        order = rng.permutation(n) if batch and batch < n else np.arange(n)
        step = batch if batch and batch < n else n
        for s in range(0, n, step):
            i = order[s:s + step]
            p = sigmoid(X[i] @ w + b)
            gw = X[i].T @ (p - y[i]) / len(i) + mu * (w - w0)
            gb = np.sum(p - y[i]) / len(i) + mu * (b - b0)
            w -= lr * gw
            b -= lr * gb
    return w, b


def main():
    params = fl.read_params()
    g = fl.read_global()
    feats = params.get("features") or []
    fl.check_like(g, {"weight": (len(feats),), "bias": (1,)})
    X, y = fl.design(params)
    if len(y) == 0:
        raise fl.Fail("no complete rows to train on")
    epochs = int(params.get("epochs", 5))
    lr = float(params.get("lr", 0.1))
    mu = float(params.get("mu", 0.0))
    batch = int(params.get("batch_size", 0))
    if epochs < 0 or not lr > 0 or mu < 0 or batch < 0:
        raise fl.Fail("params epochs, lr, mu or batch_size out of range")
    rng = np.random.default_rng(int(params.get("seed", 0)) + int(params.get("round", 0)))
    w0 = g["weight"].astype(np.float64)
    b0 = g["bias"].astype(np.float64)
    w, b = train(X, y, w0, b0, epochs, lr, mu, batch, rng)
    acc = float(np.mean((sigmoid(X @ w + b) >= 0.5) == (y == 1)))
    fl.write_update({"weight": w, "bias": b}, g)
    fl.write_metrics(len(y), log_loss(X, y, w, b), accuracy=acc, loss_before=log_loss(X, y, w0, b0))


def init(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="logreg.py init")
    ap.add_argument("--features", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dtype", default="F32", choices=["F32", "F64"])
    a = ap.parse_args(argv)
    dt = np.float32 if a.dtype == "F32" else np.float64
    fl.write_safetensors(a.out, {"weight": np.zeros(a.features, dt), "bias": np.zeros(1, dt)})


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "init":
        init(sys.argv[2:])
    else:
        fl.run(main)
