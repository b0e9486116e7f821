#!/usr/bin/env python3
"""Regenerate data/flowers.csv, the example pipeline's dataset (standard library only).

Usage: python3 layouts/ml/generate_dataset.py [OUT]   (default: data/flowers.csv beside this file)

The CSV is committed; this script only documents how it was made. It draws three classes of
iris-like flowers (four measurements in cm) from fixed Gaussian parameters with a fixed seed,
so a simple model separates them well (about 95 % accuracy) but not perfectly. The rows are
shuffled so that a split by row position mixes the classes.
"""
import os
import random
import sys

SEED = 20240601
ROWS_PER_CLASS = 100
HEADER = ["id", "sepal_length", "sepal_width", "petal_length", "petal_width", "species"]

# (mean, standard deviation) per feature, close to Fisher's iris measurements.
CLASSES = {
    "setosa": [(5.01, 0.35), (3.42, 0.38), (1.46, 0.17), (0.24, 0.11)],
    "versicolor": [(5.94, 0.52), (2.77, 0.31), (4.26, 0.47), (1.33, 0.20)],
    "virginica": [(6.59, 0.64), (2.97, 0.32), (5.55, 0.55), (2.03, 0.27)],
}


def draw(rng, mean, sd):
    # Two decimals like a ruler reading; clamp so that every value stays inside schema.json.
    return min(9.9, max(0.1, round(rng.gauss(mean, sd), 2)))


def main(argv):
    out = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "flowers.csv")
    rng = random.Random(SEED)
    rows = []
    for species, params in CLASSES.items():
        for _ in range(ROWS_PER_CLASS):
            rows.append([draw(rng, m, s) for m, s in params] + [species])
    rng.shuffle(rows)
    with open(out, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(HEADER) + "\n")
        for i, row in enumerate(rows, start=1):
            f.write(",".join([str(i)] + ["%.2f" % v for v in row[:4]] + [row[4]]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
