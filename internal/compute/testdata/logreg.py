# A training program for tests of federated learning: logistic
# regression by full-batch gradient descent with numpy, following the
# training program contract (MOSAIC_IN, MOSAIC_DATA, MOSAIC_OUT).
import json, os, struct, sys
import numpy as np

IN, DATA, OUT = os.environ.get("MOSAIC_IN", "/in"), os.environ.get("MOSAIC_DATA", "/data"), os.environ.get("MOSAIC_OUT", "/out")
DT = {"F64": "<f8", "F32": "<f4"}

def read_st(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        body = f.read()
    out = []
    for name, t in head.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out.append((a, name, t["dtype"], np.frombuffer(body[a:b], dtype=DT[t["dtype"]]).reshape(t["shape"]).astype(np.float64)))
    out.sort()
    return [(n, d, v) for _, n, d, v in out]

def write_st(path, tensors):
    head, blobs, off = {}, [], 0
    for name, dtype, v in tensors:
        b = np.ascontiguousarray(v, dtype=DT[dtype]).tobytes()
        head[name] = {"dtype": dtype, "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(head).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))

def load(table, features, target):
    import csv
    X, y = [], []
    with open(os.path.join(DATA, "tables", table + ".csv")) as f:
        for row in csv.DictReader(f):
            vals = [row[c] for c in features + [target]]
            if any(v in ("", "NA") for v in vals):
                continue
            X.append([float(v) for v in vals[:-1]])
            y.append(float(vals[-1]))
    return np.array(X), np.array(y)

def main():
    p = json.load(open(os.path.join(IN, "params.json")))
    ts = read_st(os.path.join(IN, "global.safetensors"))
    w = {n: v for n, _, v in ts}
    X, y = load(p["table"], p["features"], p["target"])
    if len(y) == 0:
        print("no complete rows", file=sys.stderr)
        sys.exit(2)
    coef, bias = w["coef"].copy(), w["bias"].copy()
    g0c, g0b = coef.copy(), bias.copy()
    lr, mu = float(p.get("lr", 0.1)), float(p.get("mu", 0))
    for _ in range(int(p.get("epochs", 1))):
        z = X @ coef + bias[0]
        pr = 1 / (1 + np.exp(-z))
        gc = X.T @ (pr - y) / len(y) + mu * (coef - g0c)
        gb = np.array([np.mean(pr - y)]) + mu * (bias - g0b)
        coef, bias = coef - lr * gc, bias - lr * gb
    z = X @ coef + bias[0]
    loss = float(np.mean(np.logaddexp(0, z) - y * z))
    if os.path.exists(os.path.join(DATA, "tables", "poison.csv")):
        coef[:] = np.nan
    write_st(os.path.join(OUT, "update.safetensors"), [(n, d, {"coef": coef, "bias": bias}[n]) for n, d, _ in ts])
    json.dump({"samples": len(y), "loss": loss}, open(os.path.join(OUT, "metrics.json"), "w"))

main()
