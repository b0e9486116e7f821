#!/usr/bin/env python3
"""evaluate.py DATA MODEL --out metrics.json [--min-accuracy 0.8]: score a model on held-out rows.

Run with Debian's /usr/bin/python3 (python3-sklearn, python3-joblib), as the layout does.

Loads the model written by train.py with joblib's own unpickler restricted to the exact globals
such a model needs (find_class refuses any other import, persistent ids are refused, and bytes
after the pickle are refused), checks its shape, recomputes the train/test split from the seed
recorded in it, predicts the test rows and scores them with scikit-learn's metrics
(accuracy_score, confusion_matrix, precision_recall_fscore_support). metrics.json has sorted
keys and floats rounded to six decimals: the same bytes on every run.

The pipeline's scan-model inspection (intoto scan-model) judges the same file against the full
default policy at verification; this step's own list is the narrower defence for the moment it
loads the model, before anyone has verified anything.

Exit status: 0 accuracy at or above the floor; 1 below the floor (metrics.json is still
written, so the link records what was measured); 2 bad usage, unreadable data, or a model that
is unsafe or not a model train.py writes (nothing is written).
"""
import argparse
import csv
import hashlib
import io
import json
import os
import pickle
import sys

MODEL_FORMAT = "intoto-demo/sklearn-random-forest/1"
MAX_MODEL_BYTES = 64 * 1024 * 1024
MAX_DATA_BYTES = 16 * 1024 * 1024

# Exactly the globals a joblib-saved RandomForestClassifier imports (scikit-learn 1.2, numpy
# 1.24, joblib 1.2); test/ml/steps.test.ts checks that train.py's model needs no other.
ALLOWED_GLOBALS = frozenset(
    {
        ("sklearn.ensemble._forest", "RandomForestClassifier"),
        ("sklearn.tree._classes", "DecisionTreeClassifier"),
        ("sklearn.tree._tree", "Tree"),
        ("joblib.numpy_pickle", "NumpyArrayWrapper"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
    }
)


class InputError(Exception):
    """The data or the model cannot be used (exit status 2)."""


def is_test_row(seed, index, modulus):
    """The split, shared with train.py (keep the two in step; a test checks that they agree)."""
    digest = hashlib.sha256(("%d:%d" % (seed, index)).encode("ascii")).digest()
    return int.from_bytes(digest[:8], "big") % modulus == 0


def restricted_unpickler(stream):
    """joblib's unpickler (it reads the numpy arrays joblib writes inline), restricted."""
    from joblib.numpy_pickle import NumpyUnpickler

    class Restricted(NumpyUnpickler):
        def find_class(self, module, name):
            if (module, name) in ALLOWED_GLOBALS:
                return super().find_class(module, name)
            raise pickle.UnpicklingError("refusing to import %s.%s from a model file" % (module, name))

        def persistent_load(self, pid):
            raise pickle.UnpicklingError("refusing a persistent id in a model file")

    return Restricted("model", stream)


def read_bounded(path, limit):
    """The bytes of `path`, refused when it is larger than `limit` (read at most limit + 1)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(limit + 1)
    except OSError as error:
        raise InputError("cannot read %s: %s" % (path, error.strerror or error))
    if len(raw) > limit:
        raise InputError("%s is larger than %d bytes" % (path, limit))
    return raw


def load_model(path):
    raw = read_bounded(path, MAX_MODEL_BYTES)
    stream = io.BytesIO(raw)
    try:
        model = restricted_unpickler(stream).load()
    except Exception as error:  # any failure to unpickle is a refusal, whatever its type
        raise InputError("%s: unsafe or corrupt model: %s" % (path, error))
    if stream.tell() != len(raw):
        # load() stops at the first STOP; bytes after it are a second payload in hiding.
        raise InputError("%s: %d unexpected bytes after the model" % (path, len(raw) - stream.tell()))
    check_model(model, path)
    return model, hashlib.sha256(raw).hexdigest()


def check_model(model, path):
    from sklearn.ensemble import RandomForestClassifier

    def bad(what):
        raise InputError("%s: not a %s model: %s" % (path, MODEL_FORMAT, what))

    if type(model) is not dict or model.get("format") != MODEL_FORMAT:
        bad("wrong format tag")
    if type(model.get("estimator")) is not RandomForestClassifier:
        bad("the estimator is not a RandomForestClassifier")
    classes, features = model.get("classes"), model.get("features")
    if not is_list_of(classes, str) or len(classes) < 2 or not is_list_of(features, str) or not features:
        bad("classes or features")
    if [str(c) for c in model["estimator"].classes_] != classes or model["estimator"].n_features_in_ != len(features):
        bad("the estimator does not match its classes or features")
    split = model.get("split")
    if type(split) is not dict or split.get("method") != "sha256-mod":
        bad("unknown split method")
    if type(split.get("seed")) is not int or type(split.get("modulus")) is not int or split["modulus"] < 2:
        bad("split seed or modulus")
    if type(model.get("label")) is not str:
        bad("label")


def is_list_of(value, kind):
    return type(value) is list and all(type(item) is kind for item in value)


def read_test_rows(path, model):
    raw = read_bounded(path, MAX_DATA_BYTES)
    try:
        rows = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline=""), strict=True))
    except (UnicodeDecodeError, csv.Error) as error:
        raise InputError("%s: %s" % (path, error))
    if not rows:
        raise InputError("%s is empty" % path)
    header = rows[0]
    missing = [name for name in model["features"] + [model["label"]] if name not in header]
    if missing:
        raise InputError("%s lacks the model's columns: %s" % (path, ", ".join(missing)))
    feature_at = [header.index(name) for name in model["features"]]
    label_at = header.index(model["label"])
    split = model["split"]
    xs, ys = [], []
    for index, row in enumerate(rows[1:]):
        if not is_test_row(split["seed"], index, split["modulus"]):
            continue
        if len(row) != len(header):
            raise InputError("%s line %d: %d fields, expected %d" % (path, index + 2, len(row), len(header)))
        try:
            values = [float(row[i]) for i in feature_at]
        except ValueError:
            raise InputError("%s line %d: a feature is not a number" % (path, index + 2))
        xs.append(values)
        ys.append(row[label_at])
    if not xs:
        raise InputError("%s has no test rows" % path)
    return hashlib.sha256(raw).hexdigest(), xs, ys


def rounded(value):
    # Six decimals, then back to float: json writes the shortest repr, the same on every run.
    return float("%.6f" % value)


def metrics_for(model, xs, ys):
    """scikit-learn's metrics on the test rows."""
    import numpy as np
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    classes = model["classes"]
    predicted = [str(p) for p in model["estimator"].predict(np.array(xs, dtype=np.float64))]
    unknown = sum(1 for y in ys if y not in classes)
    confusion = confusion_matrix(ys, predicted, labels=classes)
    precision, recall, _f1, support = precision_recall_fscore_support(ys, predicted, labels=classes, zero_division=0)
    return {
        "accuracy": rounded(accuracy_score(ys, predicted)),
        "correct": int(sum(1 for y, p in zip(ys, predicted) if y == p)),
        "test_rows": len(ys),
        "unknown_labels": unknown,
        "classes": classes,
        "confusion_matrix": [[int(v) for v in row] for row in confusion],
        "per_class": {
            cls: {"precision": rounded(precision[i]), "recall": rounded(recall[i]), "support": int(support[i])} for i, cls in enumerate(classes)
        },
    }


def main(argv):
    parser = argparse.ArgumentParser(prog="evaluate.py", description="Score a model on the held-out rows.")
    parser.add_argument("data", help="the CSV dataset")
    parser.add_argument("model", help="the model written by train.py (joblib)")
    parser.add_argument("--out", required=True, help="where to write metrics.json")
    parser.add_argument("--min-accuracy", type=float, default=0.8, help="the accuracy floor (default 0.8)")
    args = parser.parse_args(argv)
    if not 0.0 <= args.min_accuracy <= 1.0:
        parser.error("--min-accuracy must be between 0 and 1")
    try:
        model, model_sha256 = load_model(args.model)
        data_sha256, xs, ys = read_test_rows(args.data, model)
    except InputError as error:
        print("evaluate: %s" % error, file=sys.stderr)
        return 2
    metrics = metrics_for(model, xs, ys)
    passed = metrics["accuracy"] >= args.min_accuracy
    metrics.update(
        {
            "min_accuracy": args.min_accuracy,
            "passed": passed,
            "model_sha256": model_sha256,
            "data_sha256": data_sha256,
        }
    )
    text = json.dumps(metrics, sort_keys=True, indent=2, ensure_ascii=True) + "\n"
    temp = args.out + ".tmp"
    try:
        with open(temp, "w", encoding="ascii", newline="\n") as f:
            f.write(text)
        os.replace(temp, args.out)
    except OSError as error:
        print("evaluate: cannot write %s: %s" % (args.out, error.strerror or error), file=sys.stderr)
        return 2
    summary = "accuracy %.4f on %d test rows (floor %.4f)" % (metrics["accuracy"], metrics["test_rows"], args.min_accuracy)
    if not passed:
        print("evaluate: FAILED: %s" % summary, file=sys.stderr)
        return 1
    print("evaluate: OK: %s" % summary)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
