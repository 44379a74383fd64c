# A validation program for tests: scores each row of a table with a
# logistic model's weights and writes /out/scores.csv (score,label).
import csv, json, os, struct
import numpy as np

IN, DATA, OUT = os.environ.get("MOSAIC_IN", "/in"), os.environ.get("MOSAIC_DATA", "/data"), os.environ.get("MOSAIC_OUT", "/out")
DT = {"F64": "<f8", "F32": "<f4"}

with open(os.path.join(IN, "model.safetensors"), "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    head = json.loads(f.read(n))
    body = f.read()
w = {}
for name, t in head.items():
    if name != "__metadata__":
        a, b = t["data_offsets"]
        w[name] = np.frombuffer(body[a:b], dtype=DT[t["dtype"]]).astype(np.float64)
p = json.load(open(os.path.join(IN, "params.json")))
with open(os.path.join(DATA, "tables", p["table"] + ".csv")) as f, open(os.path.join(OUT, "scores.csv"), "w") as o:
    o.write("score,label\n")
    for row in csv.DictReader(f):
        vals = [row[c] for c in p["features"] + [p["target"]]]
        if any(v in ("", "NA") for v in vals):
            continue
        x = np.array([float(v) for v in vals[:-1]])
        s = 1 / (1 + np.exp(-(x @ w["coef"] + w["bias"][0])))
        o.write("%.17g,%d\n" % (s, int(float(vals[-1]))))
