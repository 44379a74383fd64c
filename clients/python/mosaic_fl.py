"""Mosaic federated learning: the helpers a training or validation program uses.

A program runs at a node, once per round, inside the node's sandbox. It reads
the round's global weights and parameters from MOSAIC_IN (/in), the
snapshot's research tables and DICOM files from MOSAIC_DATA (/data), and
writes its results to MOSAIC_OUT (/out), the only writable place:

- training: /in/global.safetensors and /in/params.json in,
  /out/update.safetensors (same tensor names, shapes and dtypes as the
  global) and /out/metrics.json ({"samples": n, "loss": x, ...}) out;
- validation: /in/model.safetensors and /in/params.json in, /out/scores.csv
  (columns score,label, one line per row scored) out. Scores never leave
  the node: the node turns them into counts.

A program exits non-zero on error, with a message on stderr that carries no
data values: use run(main), and raise Fail with such a message.

Only numpy is needed (Debian's python3-numpy).
"""

import csv
import json
import math
import os
import struct
import sys

import numpy as np

IN = os.environ.get("MOSAIC_IN", "/in")
DATA = os.environ.get("MOSAIC_DATA", "/data")
OUT = os.environ.get("MOSAIC_OUT", "/out")

MAX_HEADER = 100 << 20

_DTYPES = {
    "F16": np.dtype("<f2"), "F32": np.dtype("<f4"), "F64": np.dtype("<f8"),
    "I8": np.dtype("i1"), "U8": np.dtype("u1"), "I16": np.dtype("<i2"), "U16": np.dtype("<u2"),
    "I32": np.dtype("<i4"), "U32": np.dtype("<u4"), "I64": np.dtype("<i8"), "U64": np.dtype("<u8"),
    "BOOL": np.dtype("bool"),
}


class Fail(Exception):
    """An error whose message is safe to print: it carries no data values."""


def run(main):
    """Runs main(); on error prints a message without data to stderr and exits 1."""
    try:
        main()
    except Fail as e:
        print("error: %s" % e, file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # never echo values: name the kind of error only
        print("error: %s at the program's own code" % type(e).__name__, file=sys.stderr)
        sys.exit(1)


def dtype_name(dt):
    """The safetensors name of a numpy dtype (F32, F64, ...)."""
    dt = np.dtype(dt)
    for name, d in _DTYPES.items():
        if d == dt or (d.kind == dt.kind and d.itemsize == dt.itemsize):
            return name
    raise Fail("dtype %s cannot be written as safetensors" % dt)


def read_safetensors(path):
    """Reads a safetensors file: (dict name -> numpy array in file order, metadata dict).

    The header is bounded, the offsets checked to be contiguous and to cover
    the data exactly; a bad file raises Fail.
    """
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise Fail("%s: not a safetensors file" % os.path.basename(path))
        (n,) = struct.unpack("<Q", raw)
        if n < 2 or n > MAX_HEADER:
            raise Fail("%s: header length out of range" % os.path.basename(path))
        hdr = f.read(n)
        if len(hdr) != n:
            raise Fail("%s: header cut short" % os.path.basename(path))
        try:
            header = json.loads(hdr.decode("utf-8"))
        except ValueError:
            raise Fail("%s: header is not JSON" % os.path.basename(path))
        if not isinstance(header, dict):
            raise Fail("%s: header is not an object" % os.path.basename(path))
        data = f.read()
    meta = header.pop("__metadata__", None) or {}
    entries = []
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise Fail("tensor %r: needs dtype, shape and data_offsets" % name)
        dt = _DTYPES.get(info["dtype"])
        if dt is None:
            raise Fail("tensor %r: dtype %s not supported" % (name, info["dtype"]))
        shape = info["shape"]
        begin, end = info["data_offsets"]
        if any((not isinstance(d, int)) or d < 0 for d in shape):
            raise Fail("tensor %r: bad shape" % name)
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if begin < 0 or end - begin != count * dt.itemsize:
            raise Fail("tensor %r: data_offsets do not match dtype and shape" % name)
        entries.append((begin, end, name, dt, shape))
    entries.sort(key=lambda e: (e[0], e[1]))
    off = 0
    out = {}
    for begin, end, name, dt, shape in entries:
        if begin != off:
            raise Fail("tensor %r: data not contiguous" % name)
        off = end
        out[name] = np.frombuffer(data, dtype=dt, count=(end - begin) // dt.itemsize, offset=begin).reshape(shape).copy()
    if off != len(data):
        raise Fail("%s: data size does not match the header" % os.path.basename(path))
    return out, meta


def write_safetensors(path, tensors, metadata=None):
    """Writes tensors (dict name -> numpy array, in order) as a safetensors file.

    The file appears complete or not at all (written aside, then renamed).
    """
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    off = 0
    arrays = []
    for name, a in tensors.items():
        a = np.asarray(a)  # (ascontiguousarray would turn a scalar into shape (1,))
        if not a.flags.c_contiguous:
            a = a.copy(order="C")
        dt = dtype_name(a.dtype)
        a = a.astype(_DTYPES[dt], copy=False)
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
        arrays.append(a)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for a in arrays:
            f.write(a.tobytes())
    os.replace(tmp, path)


def read_params(path=None):
    """The round's parameters (/in/params.json) as a dict."""
    path = path or os.path.join(IN, "params.json")
    try:
        with open(path) as f:
            p = json.load(f)
    except (OSError, ValueError):
        raise Fail("params.json is missing or not JSON")
    if not isinstance(p, dict):
        raise Fail("params.json is not an object")
    return p


def read_global(name="global.safetensors"):
    """The round's global weights (/in/global.safetensors)."""
    return read_safetensors(os.path.join(IN, name))[0]


def read_table(name, columns=None, text=()):
    """Reads /data/tables/NAME.csv: dict column -> numpy array.

    Columns whose values all read as numbers (NA or empty as missing) are
    float64 with NaN for missing; others are arrays of str with None for
    missing. columns, when given, limits the columns read (all must exist);
    columns named in text are read as strings whatever they hold (keys).
    """
    if not name or "/" in name or name.startswith("."):
        raise Fail("bad table name")
    path = os.path.join(DATA, "tables", name + ".csv")
    try:
        f = open(path, newline="", encoding="utf-8")
    except OSError:
        raise Fail("table %r is not in the snapshot" % name)
    with f:
        r = csv.reader(f)
        try:
            head = next(r)
        except StopIteration:
            raise Fail("table %r is empty" % name)
        want = list(columns) if columns is not None else head
        missing = [c for c in want if c not in head]
        if missing:
            raise Fail("table %r has no column %s" % (name, ", ".join(map(repr, missing))))
        idx = [head.index(c) for c in want]
        cols = [[] for _ in want]
        for line, row in enumerate(r, start=2):
            if len(row) != len(head):
                raise Fail("table %r line %d: %d fields, want %d" % (name, line, len(row), len(head)))
            for k, i in enumerate(idx):
                cols[k].append(row[i])
    out = {}
    for c, vals in zip(want, cols):
        out[c] = _text(vals) if c in text else _column(vals)
    return out


def _text(vals):
    return np.array([None if v.strip() in ("", "NA") else v for v in vals], dtype=object)


def _column(vals):
    nums = np.empty(len(vals), dtype=np.float64)
    for i, v in enumerate(vals):
        v = v.strip()
        if v == "" or v == "NA":
            nums[i] = np.nan
            continue
        try:
            nums[i] = float(v)
        except ValueError:
            return _text(vals)
    return nums


def design(params, table=None):
    """The model matrix of a tabular program: (X, y) from params' table, target
    and features, with rows missing any of them dropped.

    The target must be 0/1, or params["positive"] names the value counted as 1.
    Scaling is the same at every node: params["center"] and params["scale"]
    (one number per feature) when given, else none. A node never scales by its
    own data, which would give each node a different model.
    """
    tname, target, feats = params.get("table"), params.get("target"), params.get("features")
    if not tname or not target or not isinstance(feats, list) or not feats:
        raise Fail("params need table, target and features")
    t = table if table is not None else read_table(tname, [target] + list(feats))
    X = np.empty((len(t[target]), len(feats)), dtype=np.float64)
    for j, c in enumerate(feats):
        if t[c].dtype == object:
            raise Fail("feature %r is not numeric" % c)
        X[:, j] = t[c]
    yraw = t[target]
    if "positive" in params:
        pos = params["positive"]
        if yraw.dtype == object:
            y = np.array([np.nan if v is None else float(v == str(pos)) for v in yraw])
        else:
            y = np.where(np.isnan(yraw), np.nan, (yraw == float(pos)).astype(float))
    else:
        if yraw.dtype == object:
            raise Fail("target %r is not numeric: set params.positive" % target)
        y = yraw
    keep = ~np.isnan(y) & ~np.isnan(X).any(axis=1)
    X, y = X[keep], y[keep]
    if not np.isin(y, (0.0, 1.0)).all():
        raise Fail("target %r must be 0 or 1 (or set params.positive)" % target)
    center, scale = params.get("center"), params.get("scale")
    if center is not None or scale is not None:
        center = np.zeros(len(feats)) if center is None else np.asarray(center, dtype=float)
        scale = np.ones(len(feats)) if scale is None else np.asarray(scale, dtype=float)
        if center.shape != (len(feats),) or scale.shape != (len(feats),) or (scale == 0).any():
            raise Fail("params center and scale need one number per feature, scale not 0")
        X = (X - center) / scale
    return X, y


def check_like(tensors, shapes):
    """Checks that tensors hold exactly the names and shapes of shapes (dict name -> tuple)."""
    if set(tensors) != set(shapes):
        raise Fail("weights hold tensors %s, want %s" % (sorted(tensors), sorted(shapes)))
    for name, shape in shapes.items():
        if tuple(tensors[name].shape) != tuple(shape):
            raise Fail("tensor %r has shape %s, want %s" % (name, tuple(tensors[name].shape), tuple(shape)))


def write_update(tensors, like):
    """Writes /out/update.safetensors: tensors cast to the dtypes of like (the
    global), in like's order, after checking names and shapes."""
    check_like(tensors, {k: v.shape for k, v in like.items()})
    out = {}
    for name, g in like.items():
        a = np.asarray(tensors[name]).astype(g.dtype)
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise Fail("tensor %r is not finite after training" % name)
        out[name] = a
    write_safetensors(os.path.join(OUT, "update.safetensors"), out)


def write_metrics(samples, loss, **metrics):
    """Writes /out/metrics.json: {"samples": n, "loss": x, other numbers}."""
    m = {"samples": int(samples), "loss": float(loss)}
    for k, v in metrics.items():
        v = float(v)
        if not math.isfinite(v):
            raise Fail("metric %r is not finite" % k)
        m[k] = v
    if not math.isfinite(m["loss"]):
        raise Fail("loss is not finite")
    with open(os.path.join(OUT, "metrics.json"), "w") as f:
        json.dump(m, f)


def write_scores(scores, labels):
    """Writes /out/scores.csv (score,label per row). Scores stay at the node."""
    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels, dtype=float)
    if scores.shape != labels.shape or scores.ndim != 1:
        raise Fail("scores and labels differ in shape")
    if not np.isfinite(scores).all():
        raise Fail("a score is not finite")
    with open(os.path.join(OUT, "scores.csv"), "w") as f:
        f.write("score,label\n")
        for s, y in zip(scores, labels):
            f.write("%.17g,%d\n" % (s, int(y)))
