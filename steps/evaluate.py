#!/usr/bin/env python3
"""evaluate.py DATA MODEL --out metrics.json [--min-accuracy 0.8]: score a model on held-out rows.

Loads the model written by train.py with a restricted unpickler (no imports except a few inert
builtin containers, no persistent ids, no trailing bytes), checks its shape, recomputes the
train/test split from the seed recorded in it, predicts the test rows and writes metrics.json
(sorted keys, floats rounded to six decimals: the same bytes on every run).

Exit status: 0 accuracy at or above the floor; 1 below the floor (metrics.json is still
written, so the link records what was measured); 2 bad usage, unreadable data, or a model that
is unsafe or not a model train.py writes (nothing is written).
"""
import argparse
import csv
import hashlib
import io
import json
import math
import os
import pickle
import sys

MODEL_FORMAT = "intoto-demo/gaussian-nb/1"
MAX_MODEL_BYTES = 16 * 1024 * 1024
MAX_DATA_BYTES = 16 * 1024 * 1024


class InputError(Exception):
    """The data or the model cannot be used (exit status 2)."""


def is_test_row(seed, index, modulus):
    """The split, shared with train.py (keep the two in step; a test checks that they agree)."""
    digest = hashlib.sha256(("%d:%d" % (seed, index)).encode("ascii")).digest()
    return int.from_bytes(digest[:8], "big") % modulus == 0


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can build plain data and nothing else.

    Every import a pickle makes (GLOBAL, STACK_GLOBAL, INST, EXT*) goes through find_class, so
    refusing there stops os.system, builtins.eval and the like before anything is called. A
    model from train.py needs no import at all; the few inert containers below are allowed
    only because other writers of plain data use them at older protocols.
    """

    SAFE = frozenset(
        {
            ("builtins", "dict"),
            ("builtins", "list"),
            ("builtins", "tuple"),
            ("builtins", "set"),
            ("builtins", "frozenset"),
        }
    )

    def find_class(self, module, name):
        if (module, name) in self.SAFE:
            return super().find_class(module, name)
        raise pickle.UnpicklingError("refusing to import %s.%s from a model pickle" % (module, name))

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refusing a persistent id in a model pickle")


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
        model = RestrictedUnpickler(stream).load()
    except Exception as error:  # any failure to unpickle is a refusal, whatever its type
        raise InputError("%s: unsafe or corrupt pickle: %s" % (path, error))
    if stream.tell() != len(raw):
        # pickle.load stops at the first STOP; bytes after it are a second payload in hiding.
        raise InputError("%s: %d unexpected bytes after the pickle" % (path, len(raw) - stream.tell()))
    check_model(model, path)
    return model, hashlib.sha256(raw).hexdigest()


def check_model(model, path):
    def bad(what):
        raise InputError("%s: not a %s model: %s" % (path, MODEL_FORMAT, what))

    if type(model) is not dict or model.get("format") != MODEL_FORMAT:
        bad("wrong format tag")
    classes, features = model.get("classes"), model.get("features")
    if not is_list_of(classes, str) or len(classes) < 2 or not is_list_of(features, str) or not features:
        bad("classes or features")
    if not is_list_of(model.get("class_counts"), int) or len(model["class_counts"]) != len(classes):
        bad("class_counts")
    if min(model["class_counts"]) <= 0:
        bad("a class without training rows")
    for key in ("means", "variances"):
        table = model.get(key)
        if type(table) is not list or len(table) != len(classes):
            bad(key)
        for row in table:
            if not is_list_of(row, float) or len(row) != len(features) or not all(math.isfinite(v) for v in row):
                bad(key)
    if not all(v > 0.0 for row in model["variances"] for v in row):
        bad("a variance that is not positive")
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


def predict(model, x):
    """The class with the highest log posterior; ties go to the first class in sorted order."""
    total = sum(model["class_counts"])
    best, best_score = None, -math.inf
    for cls, count, means, variances in zip(model["classes"], model["class_counts"], model["means"], model["variances"]):
        score = math.log(count / total)
        for v, m, var in zip(x, means, variances):
            score -= 0.5 * math.log(2.0 * math.pi * var) + (v - m) * (v - m) / (2.0 * var)
        if score > best_score:
            best, best_score = cls, score
    return best


def rounded(value):
    # Six decimals, then back to float: json writes the shortest repr, the same on every run.
    return float("%.6f" % value)


def metrics_for(model, xs, ys):
    classes = model["classes"]
    position = {cls: i for i, cls in enumerate(classes)}
    confusion = [[0] * len(classes) for _ in classes]
    unknown = 0
    correct = 0
    for x, y in zip(xs, ys):
        guess = predict(model, x)
        correct += guess == y
        if y in position:
            confusion[position[y]][position[guess]] += 1
        else:
            unknown += 1
    per_class = {}
    for i, cls in enumerate(classes):
        predicted = sum(row[i] for row in confusion)
        actual = sum(confusion[i])
        per_class[cls] = {
            "precision": rounded(confusion[i][i] / predicted) if predicted else 0.0,
            "recall": rounded(confusion[i][i] / actual) if actual else 0.0,
            "support": actual,
        }
    return {
        "accuracy": rounded(correct / len(ys)),
        "correct": correct,
        "test_rows": len(ys),
        "unknown_labels": unknown,
        "classes": classes,
        "confusion_matrix": confusion,
        "per_class": per_class,
    }


def main(argv):
    parser = argparse.ArgumentParser(prog="evaluate.py", description="Score a model on the held-out rows.")
    parser.add_argument("data", help="the CSV dataset")
    parser.add_argument("model", help="the model pickle written by train.py")
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
