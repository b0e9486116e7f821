#!/usr/bin/env python3
"""train.py DATA --out model.pkl [--seed N]: fit a Gaussian naive Bayes classifier.

Standard library only. The label is the last column (or --label); columns named by --ignore
(default: id) are not features; every other column must be numeric. Rows go to the test split
when sha256("SEED:ROW") says so (one in four), to the training split otherwise; evaluate.py
recomputes the same split from the seed recorded in the model.

The model is written with pickle protocol 4 and holds only dicts, lists, strs, ints and floats,
so a scanner that allows no imports at all accepts it. The output is byte-for-byte reproducible:
a step with threshold 2 runs twice on two machines, and both links must record the same hash.
That is why the model is Gaussian naive Bayes rather than gradient descent: its parameters
need only +, -, * and / (correctly rounded in IEEE 754, so identical everywhere) and math.fsum
(exactly rounded), never exp or log, whose last bit may differ between C libraries.

Exit status: 0 the model was written; 2 bad usage or unusable data (nothing is written).
"""
import argparse
import csv
import hashlib
import io
import math
import os
import pickle
import sys

MODEL_FORMAT = "intoto-demo/gaussian-nb/1"
PICKLE_PROTOCOL = 4
TEST_MODULUS = 4  # one row in four is held out for evaluate.py
VAR_SMOOTHING = 1e-9  # as scikit-learn: a fraction of the largest variance, added to every variance
MAX_DATA_BYTES = 16 * 1024 * 1024


class DataError(Exception):
    """The dataset cannot be used for training (exit status 2)."""


def is_test_row(seed, index, modulus=TEST_MODULUS):
    """The split, shared with evaluate.py: a hash, so it does not depend on random's algorithm."""
    digest = hashlib.sha256(("%d:%d" % (seed, index)).encode("ascii")).digest()
    return int.from_bytes(digest[:8], "big") % modulus == 0


def read_dataset(path, label, ignore):
    """Returns (sha256 hex of the file, label name, feature names, rows of floats, labels)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_DATA_BYTES + 1)
    except OSError as error:
        raise DataError("cannot read %s: %s" % (path, error.strerror or error))
    if len(raw) > MAX_DATA_BYTES:
        raise DataError("%s is larger than %d bytes" % (path, MAX_DATA_BYTES))
    try:
        rows = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline=""), strict=True))
    except (UnicodeDecodeError, csv.Error) as error:
        raise DataError("%s: %s" % (path, error))
    if len(rows) < 2:
        raise DataError("%s has no data rows" % path)
    header = rows[0]
    label = label if label is not None else header[-1]
    if label not in header:
        raise DataError("%s has no column %r" % (path, label))
    label_at = header.index(label)
    feature_at = [i for i, name in enumerate(header) if i != label_at and name not in ignore]
    features = [header[i] for i in feature_at]
    xs, ys = [], []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DataError("%s line %d: %d fields, expected %d" % (path, line, len(row), len(header)))
        try:
            values = [float(row[i]) for i in feature_at]
        except ValueError:
            raise DataError("%s line %d: a feature is not a number" % (path, line))
        if not all(math.isfinite(v) for v in values):
            raise DataError("%s line %d: a feature is not finite" % (path, line))
        xs.append(values)
        ys.append(row[label_at])
    return hashlib.sha256(raw).hexdigest(), label, features, xs, ys


def fit(xs, ys):
    """Gaussian naive Bayes: per class, the count and each feature's mean and variance."""
    classes = sorted(set(ys))
    if len(classes) < 2:
        raise DataError("training needs at least two classes, found %d" % len(classes))
    counts, means, variances = [], [], []
    for cls in classes:
        members = [x for x, y in zip(xs, ys) if y == cls]
        n = len(members)
        columns = list(zip(*members))
        mean = [math.fsum(col) / n for col in columns]
        var = [math.fsum((v - m) * (v - m) for v in col) / n for col, m in zip(columns, mean)]
        counts.append(n)
        means.append(mean)
        variances.append(var)
    epsilon = VAR_SMOOTHING * max(max(var) for var in variances)
    if epsilon <= 0.0:
        raise DataError("every feature is constant within every class")
    variances = [[v + epsilon for v in var] for var in variances]
    return classes, counts, means, variances


def assert_plain(value, path="model"):
    """Refuses anything but plain builtins, so that the pickle needs no import to load."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise AssertionError("%s has a non-string key" % path)
            assert_plain(item, "%s[%r]" % (path, key))
    elif kind is list:
        for i, item in enumerate(value):
            assert_plain(item, "%s[%d]" % (path, i))
    elif kind not in (str, int, float, bool):
        raise AssertionError("%s is a %s, not a plain builtin" % (path, kind.__name__))


def dump_model(model, protocol):
    assert_plain(model)
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=protocol)
    # Fast mode writes no memo (PUT/GET) opcodes, so the bytes depend only on the values and not
    # on which equal strings happen to be one object in this interpreter. The model is a tree
    # (no cycles, no sharing), which is what fast mode requires.
    pickler.fast = True
    pickler.dump(model)
    return buffer.getvalue()


def build_model(path, label, ignore, seed):
    """The model fitted on the training rows of the dataset at `path` (raises DataError)."""
    data_sha256, label, features, xs, ys = read_dataset(path, label, ignore)
    train = [i for i in range(len(xs)) if not is_test_row(seed, i)]
    classes, counts, means, variances = fit([xs[i] for i in train], [ys[i] for i in train])
    return {
        "format": MODEL_FORMAT,
        "label": label,
        "features": features,
        "classes": classes,
        "class_counts": counts,
        "means": means,
        "variances": variances,
        "split": {"method": "sha256-mod", "seed": seed, "modulus": TEST_MODULUS},
        "train_rows": len(train),
        "data_sha256": data_sha256,
    }


def main(argv):
    parser = argparse.ArgumentParser(prog="train.py", description="Fit a Gaussian naive Bayes model.")
    parser.add_argument("data", help="the CSV dataset")
    parser.add_argument("--out", required=True, help="where to write the pickled model")
    parser.add_argument("--seed", type=int, default=0, help="selects the train/test split (default 0)")
    parser.add_argument("--label", default=None, help="the label column (default: the last column)")
    parser.add_argument("--ignore", action="append", default=None, help="a column that is not a feature (default: id)")
    parser.add_argument("--protocol", type=int, default=PICKLE_PROTOCOL, choices=range(0, 6), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    ignore = set(args.ignore) if args.ignore is not None else {"id"}
    try:
        model = build_model(args.data, args.label, ignore, args.seed)
    except DataError as error:
        print("train: %s" % error, file=sys.stderr)
        return 2
    payload = dump_model(model, args.protocol)
    temp = args.out + ".tmp"
    try:
        with open(temp, "wb") as f:
            f.write(payload)
        os.replace(temp, args.out)
    except OSError as error:
        print("train: cannot write %s: %s" % (args.out, error.strerror or error), file=sys.stderr)
        return 2
    print("train: %d training rows, %d features, classes %s" % (model["train_rows"], len(model["features"]), ", ".join(model["classes"])))
    print("train: wrote %s (%d bytes, sha256 %s)" % (args.out, len(payload), hashlib.sha256(payload).hexdigest()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
