"""Write a job's outputs in the structured formats of the Mosaic airlock.

Nothing a job writes leaves a Mosaic node unchecked. The node's airlock
checks tables, models and statistics exactly when they come in these
formats (JSON with a "mosaic_output" member): cell counts against the
threshold, residual degrees of freedom, and, for sums and means, the
dominance and p-ratio rules on the largest contributions, which these
functions compute from the data so the node can check them. Plain text,
CSV and PNG files are allowed too, but wait for a person.

Files go to the job's output folder: the environment variable
MOSAIC_OUTPUT_DIR, or /out (where the node's executors mount it); a name
that is an absolute path is used as it is. Each file is written whole to a
temporary name and then renamed, so the node never reads half a file.

Only the Python standard library is needed; numpy arrays and numbers are
accepted where sequences and numbers are. Values that are not finite
numbers (NaN, infinity) are written as null, which sends the output to
review rather than making invalid JSON.

    import mosaic_output as mo
    mo.frequency_table("stage_by_sex.json", {"sex": sex, "stage": stage})
    mo.magnitude_table("dose.json", {"site": site}, dose, statistic="mean")
    mo.model("fit.json", terms, estimates, n=n, df_residual=n - len(terms),
             std_errors=se, family="gaussian", formula="y ~ a + b")
    mo.stats("summary.json", [mo.stat("age", age, "mean"), mo.stat("n", age, "count")])
"""

import json
import math
import os
import tempfile

__all__ = [
    "FORMAT_VERSION", "output_dir", "frequency_table", "magnitude_table",
    "stat", "stats", "model", "write_text", "write_csv",
]

FORMAT_VERSION = 1

# How many of the largest contributions each sum or mean carries (the
# dominance rule looks at the two largest).
TOP = 2


def output_dir():
    """The job's output folder: $MOSAIC_OUTPUT_DIR, or /out."""
    return os.environ.get("MOSAIC_OUTPUT_DIR") or "/out"


def _path(name):
    if os.path.isabs(name):
        return name
    if os.path.normpath(name).startswith(".."):
        raise ValueError("an output name must stay inside the output folder")
    return os.path.join(output_dir(), name)


def _write(name, data):
    """Write bytes to name atomically; return the path."""
    path = _path(name)
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def _num(x):
    """A finite float, or None (null) for NaN, infinity and None."""
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise TypeError("expected a number, got %s" % type(x).__name__)
    return v if math.isfinite(v) else None


def _count(x):
    v = _num(x)
    if v is not None and v == int(v):
        return int(v)
    return v


def _list(xs):
    if hasattr(xs, "tolist"):
        xs = xs.tolist()
    return list(xs)


def _label(x):
    if hasattr(x, "item"):
        x = x.item()
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "NA"
    return str(x)


def _json(obj, name):
    data = json.dumps(obj, allow_nan=False, ensure_ascii=False, indent=1).encode("utf-8") + b"\n"
    return _write(name, data)


def _columns(by):
    if not by:
        raise ValueError("give at least one column to group by")
    names = list(by)
    cols = [_list(by[k]) for k in names]
    n = len(cols[0])
    for k, c in zip(names, cols):
        if len(c) != n:
            raise ValueError("column %r has %d values, not %d" % (k, len(c), n))
    return names, cols, n


def _cell_stats(values, statistic):
    """count, value, top and total of one group's values."""
    vals = [v for v in (_num(x) for x in values) if v is not None]
    n = len(vals)
    cell = {"count": n}
    if statistic == "count":
        return cell
    if n == 0:
        cell["value"] = None
        return cell
    total = math.fsum(vals)
    if statistic == "sum":
        value = total
    elif statistic == "mean":
        value = total / n
    elif statistic == "median":
        s = sorted(vals)
        value = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
    elif statistic in ("std", "var"):
        if n < 2:
            value = None
        else:
            m = total / n
            var = math.fsum((v - m) ** 2 for v in vals) / (n - 1)
            value = var if statistic == "var" else math.sqrt(var)
    elif statistic in ("min", "max"):
        value = min(vals) if statistic == "min" else max(vals)
    else:
        raise ValueError("unknown statistic %r: count, sum, mean, median, std, var, min, max" % statistic)
    cell["value"] = _num(value)
    if statistic in ("sum", "mean"):
        # The largest contributions by size (sign kept: the node sends
        # negative contributions to review), and their total.
        cell["top"] = sorted(vals, key=abs, reverse=True)[:TOP]
        if statistic == "mean":
            cell["total"] = total
    return cell


def frequency_table(name, by, title=None):
    """Count the rows of each combination of the columns in by.

    by maps column names to sequences of equal length (one value per row,
    missing values counted under "NA"). Every combination seen is a cell;
    the node refuses cells of 1 to 9 and sends zeros to review.
    """
    names, cols, n = _columns(by)
    counts = {}
    for i in range(n):
        key = tuple(_label(c[i]) for c in cols)
        counts[key] = counts.get(key, 0) + 1
    cells = [{"key": list(k), "count": v} for k, v in sorted(counts.items())]
    obj = {"mosaic_output": "table", "version": FORMAT_VERSION, "kind": "frequency", "dimensions": names, "cells": cells}
    if title:
        obj["title"] = title
    return _json(obj, name)


def magnitude_table(name, by, values, statistic="sum", variable=None, title=None):
    """A statistic of values per combination of the columns in by.

    statistic is sum, mean, median, std, var, min or max. Each cell has its
    count and, for sums and means, its two largest contributions, which the
    node's dominance and p-ratio checks need.
    """
    names, cols, n = _columns(by)
    vals = _list(values)
    if len(vals) != n:
        raise ValueError("values has %d entries, not %d" % (len(vals), n))
    groups = {}
    for i in range(n):
        key = tuple(_label(c[i]) for c in cols)
        groups.setdefault(key, []).append(vals[i])
    cells = []
    for key in sorted(groups):
        cell = {"key": list(key)}
        cell.update(_cell_stats(groups[key], statistic))
        cells.append(cell)
    obj = {"mosaic_output": "table", "version": FORMAT_VERSION, "kind": "magnitude", "statistic": statistic,
           "dimensions": names, "cells": cells}
    if variable:
        obj["variable"] = variable
    if title:
        obj["title"] = title
    return _json(obj, name)


def stat(name, values, statistic):
    """One statistic of a sequence of values, for stats()."""
    s = {"name": str(name), "statistic": statistic}
    s.update(_cell_stats(_list(values), statistic))
    return s


def stats(name, statistics, title=None):
    """Write statistics made by stat()."""
    obj = {"mosaic_output": "stats", "version": FORMAT_VERSION, "statistics": list(statistics)}
    if title:
        obj["title"] = title
    return _json(obj, name)


def model(name, terms, estimates, n, df_residual, std_errors=None, statistics=None, p_values=None,
          family=None, formula=None, title=None):
    """A fitted model: one coefficient per term, the rows used (n) and the
    residual degrees of freedom (the node refuses fewer than 10)."""
    terms = [str(t) for t in _list(terms)]
    est = _list(estimates)
    if len(est) != len(terms):
        raise ValueError("%d estimates for %d terms" % (len(est), len(terms)))
    extra = {"std_error": std_errors, "statistic": statistics, "p_value": p_values}
    for k, v in list(extra.items()):
        if v is not None:
            v = _list(v)
            if len(v) != len(terms):
                raise ValueError("%d %s values for %d terms" % (len(v), k, len(terms)))
        extra[k] = v
    coefs = []
    for i, t in enumerate(terms):
        c = {"term": t, "estimate": _num(est[i])}
        for k, v in extra.items():
            if v is not None:
                c[k] = _num(v[i])
        coefs.append(c)
    obj = {"mosaic_output": "model", "version": FORMAT_VERSION, "n": _count(n), "df_residual": _count(df_residual),
           "coefficients": coefs}
    if family:
        obj["family"] = family
    if formula:
        obj["formula"] = formula
    if title:
        obj["title"] = title
    return _json(obj, name)


def write_text(name, text):
    """Plain UTF-8 text (a person reads it before it leaves)."""
    return _write(name, str(text).encode("utf-8"))


def write_csv(name, header, rows):
    """A CSV file (a person checks it; row-level content is refused)."""
    import csv
    import io
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([str(h) for h in header])
    for r in rows:
        w.writerow([_label(x) for x in r])
    return _write(name, buf.getvalue().encode("utf-8"))
