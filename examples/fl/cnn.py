#!/usr/bin/env python3
"""A small convolutional network trained by federated averaging on image slices.

One round at one node: reads the global weights and params.json, reads the
snapshot's DICOM files under /data/dicom (each single-channel image; the
middle frame of a multi-frame one), downsamples each to size x size, scales
each image by its own mean and standard deviation (the same rule at every
node), trains params.epochs epochs with SGD (plus the FedProx term when
params.mu > 0) and writes the update and its metrics (see mosaic_fl).

Labels (params.label):
  {"attribute": "Modality", "positive": "CT"}: 1 when the DICOM attribute
      equals positive;
  {"table": "NAME", "column": "COL", "key": "patient_id", "attribute":
      "PatientID", "positive": "yes"}: the row of the table whose key column
      equals the image's attribute; 1 when the column equals positive (or is
      1 when positive is not given). Images without a label are left out.

Other params: size (default 32), epochs (default 1), lr (default 0.05), mu,
seed, batch_size (default 16), max_images (default 2000).

Make the first global model with:
    python3 cnn.py init --size 32 --out global.safetensors
Needs torch (Debian's python3-torch, CPU) and pydicom.
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


def shapes(size):
    """The tensors of the network for size x size images, known without torch."""
    if size < 8 or size % 4 != 0:
        raise fl.Fail("size must be a multiple of 4, at least 8")
    return {"conv1.weight": (8, 1, 3, 3), "conv1.bias": (8,), "conv2.weight": (16, 8, 3, 3),
            "conv2.bias": (16,), "fc.weight": (1, 16 * (size // 4) ** 2), "fc.bias": (1,)}


def net(size):
    import torch.nn as nn
    if size < 8 or size % 4 != 0:
        raise fl.Fail("size must be a multiple of 4, at least 8")

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
            self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
            self.fc = nn.Linear(16 * (size // 4) ** 2, 1)

        def forward(self, x):
            import torch.nn.functional as F
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            return self.fc(x.flatten(1)).squeeze(1)

    return Net()


def load_images(size, limit):
    import pydicom
    import torch
    import torch.nn.functional as F
    root = os.path.join(fl.DATA, "dicom")
    files = []
    for d, _, names in os.walk(root):
        files += [os.path.join(d, n) for n in names]
    files.sort()
    imgs, dss = [], []
    for path in files:
        if len(imgs) >= limit:
            break
        try:
            ds = pydicom.dcmread(path)
            if "PixelData" not in ds or int(ds.get("SamplesPerPixel", 1)) != 1:
                continue
            a = ds.pixel_array.astype(np.float32)
        except Exception:
            continue  # not an image this program reads
        if a.ndim == 3:
            a = a[a.shape[0] // 2]
        if a.ndim != 2:
            continue
        t = torch.from_numpy(np.ascontiguousarray(a))[None, None]
        t = F.adaptive_avg_pool2d(t, (size, size))[0]
        sd = float(t.std())
        t = (t - t.mean()) / (sd if sd > 0 else 1.0)
        imgs.append(t)
        dss.append(ds)
    return imgs, dss


def labels_for(dss, spec):
    if not isinstance(spec, dict) or "attribute" not in spec:
        raise fl.Fail("params.label needs an attribute (and a table and column to look labels up)")
    attr = spec["attribute"]
    pos = spec.get("positive")
    lookup = None
    if "table" in spec:
        key, col = spec.get("key"), spec.get("column")
        if not key or not col:
            raise fl.Fail("params.label with a table needs key and column")
        t = fl.read_table(spec["table"], [key, col], text=(key, col) if pos is not None else (key,))
        lookup = dict(zip(t[key], t[col]))
    out = []
    for ds in dss:
        v = ds.get(attr)
        v = None if v is None else str(v)
        if lookup is not None:
            v = lookup.get(v)
            if v is None or (isinstance(v, float) and np.isnan(v)):
                out.append(np.nan)
                continue
            if pos is None:
                if isinstance(v, str):
                    raise fl.Fail("label column is not numeric: set label.positive")
                out.append(1.0 if v == 1 else 0.0)
                continue
        out.append(np.nan if v is None else float(v == str(pos)))
    return np.array(out, dtype=np.float64)


def main():
    params = fl.read_params()
    size = int(params.get("size", 32))
    g = fl.read_global()
    # Check the global before the slow import of torch.
    fl.check_like(g, shapes(size))
    import torch
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    model = net(size)
    fl.check_like(g, {k: tuple(v.shape) for k, v in model.state_dict().items()})
    model.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in g.items()})
    w0 = [p.detach().clone() for p in model.parameters()]
    imgs, dss = load_images(size, int(params.get("max_images", 2000)))
    y = labels_for(dss, params.get("label"))
    keep = [i for i in range(len(y)) if not np.isnan(y[i])]
    if not keep:
        raise fl.Fail("no labelled images to train on")
    X = torch.stack([imgs[i] for i in keep])
    Y = torch.from_numpy(y[keep]).float()
    torch.manual_seed(int(params.get("seed", 0)) + int(params.get("round", 0)))
    epochs = int(params.get("epochs", 1))
    lr = float(params.get("lr", 0.05))
    mu = float(params.get("mu", 0.0))
    batch = int(params.get("batch_size", 16))
    if epochs < 0 or not lr > 0 or mu < 0 or batch < 1:
        raise fl.Fail("params epochs, lr, mu or batch_size out of range")
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    lossf = torch.nn.BCEWithLogitsLoss()
    for _ in range(epochs):
        perm = torch.randperm(len(Y))
        for s in range(0, len(Y), batch):
            i = perm[s:s + batch]
            opt.zero_grad()
            loss = lossf(model(X[i]), Y[i])
            if mu > 0:
                loss = loss + mu / 2 * sum(((p - q) ** 2).sum() for p, q in zip(model.parameters(), w0))
            loss.backward()
            opt.step()
    with torch.no_grad():
        out = model(X)
        loss = float(lossf(out, Y))
        acc = float(((out >= 0).float() == Y).float().mean())
    fl.write_update({k: v.detach().numpy() for k, v in model.state_dict().items()}, g)
    fl.write_metrics(len(Y), loss, accuracy=acc)


def init(argv):
    import argparse
    import torch
    ap = argparse.ArgumentParser(prog="cnn.py init")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    torch.manual_seed(a.seed)
    m = net(a.size)
    fl.write_safetensors(a.out, {k: v.detach().numpy() for k, v in m.state_dict().items()})


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "init":
        fl.run(lambda: init(sys.argv[2:]))
    else:
        fl.run(main)
