#!/usr/bin/env python3
"""Validation of a logistic regression trained with logreg.py.

Reads /in/model.safetensors ("weight", "bias") and /in/params.json (table,
target, features, positive, center and scale as for training), scores the
node's complete rows and writes /out/scores.csv (score,label). The scores stay
at the node; it returns only counts over the threshold grid.
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


def main():
    params = fl.read_params()
    m = fl.read_safetensors(os.path.join(fl.IN, "model.safetensors"))[0]
    feats = params.get("features") or []
    fl.check_like(m, {"weight": (len(feats),), "bias": (1,)})
    X, y = fl.design(params)
    if len(y) == 0:
        raise fl.Fail("no complete rows to score")
    z = X @ m["weight"].astype(np.float64) + float(m["bias"][0])
    fl.write_scores(0.5 * (1.0 + np.tanh(0.5 * z)), y)


if __name__ == "__main__":
    fl.run(main)
