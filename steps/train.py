#!/usr/bin/python3
"""train.py DATA --out model.pkl [--seed N]: fit a scikit-learn random forest, save it with joblib.

Run with Debian's /usr/bin/python3 (python3-sklearn, python3-joblib, python3-numpy), as the
layout does; the pyenv `python3` that may come first on PATH lacks scikit-learn.

The label is the last column (or --label); columns named by --ignore (default: id) are not
features; every other column must be numeric. Rows go to the test split when
sha256("SEED:ROW") says so (one in four), to the training split otherwise; evaluate.py
recomputes the same split from the seed recorded in the model.

model.pkl is written by joblib.dump: a dict holding the fitted RandomForestClassifier and what
evaluate.py needs (format tag, label, features, classes, split, training rows, the data's
sha256). The output is byte-for-byte reproducible, because a step with threshold 2 runs twice
on two machines and both links must record the same hash: the forest's randomness comes only
from random_state (the seed), it is fitted on one thread (n_jobs=1) by tree building that uses
no BLAS, the CSV is parsed with float() (correctly rounded, unlike a fast C parser), and
joblib/pickle write the same bytes for the same objects. What stays fixed must stay fixed:
the same data, seed and library versions (scikit-learn, numpy, joblib) give the same bytes.

Exit status: 0 the model was written; 2 bad usage or unusable data (nothing is written).
"""
import argparse
import csv
import hashlib
import io
import math
import os
import sys

MODEL_FORMAT = "intoto-demo/sklearn-random-forest/1"
TEST_MODULUS = 4  # one row in four is held out for evaluate.py
N_ESTIMATORS = 25
MAX_DATA_BYTES = 16 * 1024 * 1024
PICKLE_PROTOCOL = 4


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


def build_model(path, label, ignore, seed):
    """The model dict fitted on the training rows of the dataset at `path` (raises DataError)."""
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier

    data_sha256, label, features, xs, ys = read_dataset(path, label, ignore)
    train = [i for i in range(len(xs)) if not is_test_row(seed, i)]
    classes = sorted(set(ys[i] for i in train))
    if len(classes) < 2:
        raise DataError("training needs at least two classes, found %d" % len(classes))
    forest = RandomForestClassifier(n_estimators=N_ESTIMATORS, max_depth=6, random_state=seed, n_jobs=1)
    forest.fit(np.array([xs[i] for i in train], dtype=np.float64), np.array([ys[i] for i in train]))
    return {
        "format": MODEL_FORMAT,
        "label": label,
        "features": features,
        "classes": [str(c) for c in forest.classes_],
        "estimator": forest,
        "split": {"method": "sha256-mod", "seed": seed, "modulus": TEST_MODULUS},
        "train_rows": len(train),
        "data_sha256": data_sha256,
    }


def dump_model(model, path):
    """Writes the model with joblib.dump (atomically: a temporary file, then a rename)."""
    import joblib

    temp = path + ".tmp"
    joblib.dump(model, temp, protocol=PICKLE_PROTOCOL)
    os.replace(temp, path)


def main(argv):
    parser = argparse.ArgumentParser(prog="train.py", description="Fit a scikit-learn random forest.")
    parser.add_argument("data", help="the CSV dataset")
    parser.add_argument("--out", required=True, help="where to write the model (joblib)")
    parser.add_argument("--seed", type=int, default=0, help="the forest's random_state and the train/test split (default 0)")
    parser.add_argument("--label", default=None, help="the label column (default: the last column)")
    parser.add_argument("--ignore", action="append", default=None, help="a column that is not a feature (default: id)")
    args = parser.parse_args(argv)
    ignore = set(args.ignore) if args.ignore is not None else {"id"}
    try:
        model = build_model(args.data, args.label, ignore, args.seed)
    except DataError as error:
        print("train: %s" % error, file=sys.stderr)
        return 2
    try:
        dump_model(model, args.out)
    except OSError as error:
        print("train: cannot write %s: %s" % (args.out, error.strerror or error), file=sys.stderr)
        return 2
    with open(args.out, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    print("train: %d training rows, %d features, classes %s" % (model["train_rows"], len(model["features"]), ", ".join(model["classes"])))
    print("train: wrote %s (%d bytes, sha256 %s)" % (args.out, os.path.getsize(args.out), digest))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
