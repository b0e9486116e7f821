#!/usr/bin/python3
"""load_model.py LIST.json: load models with the real libraries, as a user would.

LIST.json is a list of [loader, path]; each is loaded in a child process of its own (forked
after the libraries are imported once), so that one payload or failure cannot affect another.

Run only inside a throw-away sandbox (test/ml/corpus.test.ts runs it under bubblewrap with
/marker bound to a temporary directory): the point is to show that a malicious corpus file
really runs its payload, which creates /marker/<name>. Loaders: pickle, joblib, torch,
numpy (np.load with allow_pickle=True, every npz member read), pandas (read_pickle), onnx
(onnx.load with external data: the "payload" is reading a file outside the model's
directory, so this script creates the marker itself when the loaded tensor holds those bytes).
Errors are ignored: many payloads break the load after they ran.
"""
import os
import pickle
import sys


def main(loader, path):
    if loader == "pickle":
        with open(path, "rb") as f:
            pickle.load(f)
    elif loader == "joblib":
        import joblib

        joblib.load(path)
    elif loader == "torch":
        import torch

        torch.load(path)
    elif loader == "numpy":
        import numpy as np

        loaded = np.load(path, allow_pickle=True)
        if hasattr(loaded, "files"):
            for name in loaded.files:
                loaded[name]
    elif loader == "pandas":
        import pandas as pd

        pd.read_pickle(path)
    elif loader == "onnx":
        import onnx
        from onnx import numpy_helper

        model = onnx.load(path)
        data = numpy_helper.to_array(model.graph.initializer[0]).tobytes()
        if data and set(data) == {ord("S")}:
            open("/marker/" + os.path.basename(path), "w").close()
    else:
        raise SystemExit("unknown loader " + loader)


def load_all(listing):
    import json
    import signal

    import joblib  # noqa: F401  (imported once, before forking)
    import numpy  # noqa: F401
    import onnx  # noqa: F401
    import pandas  # noqa: F401
    import torch  # noqa: F401

    with open(listing) as f:
        items = json.load(f)
    for loader, path in items:
        pid = os.fork()
        if pid == 0:
            signal.alarm(60)
            try:
                main(loader, path)
            except BaseException:
                pass
            os._exit(0)
        os.waitpid(pid, 0)


if __name__ == "__main__":
    load_all(sys.argv[1])
