#!/usr/bin/python3
"""gen-model-policy.py [--check]: generate `intoto scan-model --policy default` from the installed libraries.

Run with Debian's /usr/bin/python3 (python3-sklearn, python3-joblib, python3-pandas,
python3-scipy, python3-torch, python3-numpy): the pyenv `python3` that may come first on PATH
does not have them. Nothing here loads a pickle: it builds real objects, pickles them, and
reads the opcodes back with pickletools, without unpickling.

What goes into the policy, and why each entry may be used as it is:
  1. every scikit-learn estimator class (sklearn.utils.all_estimators()), as a class;
  2. every global that pickling real objects writes, with the uses observed:
       call   the callable of a REDUCE (rebuild functions such as numpy's _reconstruct,
              torch._utils._rebuild_tensor_v2, and classes whose __reduce__ calls them, such as
              numpy.dtype or sklearn's Tree);
       class  instantiated the way pickling rebuilds objects: NEWOBJ's class, or the class
              handed to copyreg._reconstructor, copyreg.__newobj__ or numpy's _reconstruct;
       value  only referenced (a dtype class stored as a parameter, a storage type in a
              PyTorch persistent id).
     The objects: every estimator fitted on a small dataset (and unfitted), pipelines and
     column transformers, numpy arrays and scalars of every dtype, pandas frames and series of
     every extension dtype, scipy sparse matrices, PyTorch tensors of every dtype, state
     dicts, optimizer state, torch.nn modules, joblib's array wrappers; each at pickle
     protocols 0 to 5.
  3. every torch.nn module class, as a class (full-model pickles, torch.save(model)).
Names the scanner never allows (os, subprocess, eval, ...) are dropped with a note, whatever
was observed; none is expected.

Output: src/ml/policy-default.generated.ts (committed), with the library versions it came
from. `--check` exits 1 if the committed file differs from what this script generates now.
"""
import argparse
import collections
import copyreg
import io
import os
import pickle
import pickletools
import sys
import warnings
import zipfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUT = os.path.join(REPO, "src", "ml", "policy-default.generated.ts")
PROTOCOLS = (0, 1, 2, 3, 4, 5)

# The rebuild helpers whose arguments name a class that gets instantiated.
CLASS_ARGUMENTS = {
    ("copyreg", "_reconstructor"): (0, 1),
    ("copyreg", "__newobj__"): (0,),
    ("copyreg", "__newobj_ex__"): (0,),
    ("numpy.core.multiarray", "_reconstruct"): (0,),
    ("sklearn.metrics._dist_metrics", "newObj"): (0,),
    ("sklearn.neighbors._kd_tree", "newObj"): (0,),
    ("sklearn.neighbors._ball_tree", "newObj"): (0,),
    ("pandas.core.indexes.base", "_new_Index"): (0,),
    ("pandas.core.indexes.datetimes", "_new_DatetimeIndex"): (0,),
}


def class_arguments(module, name):
    """The argument positions a rebuild helper instantiates (Cython's __pyx_unpickle_* too)."""
    if name.startswith("__pyx_unpickle_"):
        return (0,)
    return CLASS_ARGUMENTS.get((module, name))


class Uses:
    """Globals seen in pickles, and how each was used."""

    def __init__(self):
        self.uses = collections.defaultdict(set)

    def note(self, value, use):
        if isinstance(value, tuple) and value and value[0] == "global":
            self.uses[(value[1], value[2])].add(use)

    def scan(self, data, what):
        """Walks one pickle stream's opcodes with a symbolic stack (no object is built)."""
        stack, marks, memo = [], [], {}
        for op, arg, _pos in pickletools.genops(data):
            name = op.name
            if name in ("GLOBAL", "INST"):
                module, attr = arg.split(" ", 1)
                module, attr = fix_imports(module, attr, self.protocol)
                value = ("global", module, attr)
                self.note(value, "value")
                if name == "INST":
                    self.note(value, "call")
                    stack[marks.pop():] = []
                    stack.append(("object",))
                else:
                    stack.append(value)
            elif name == "STACK_GLOBAL":
                attr, module = stack.pop(), stack.pop()
                assert module[0] == "const" and attr[0] == "const", (what, module, attr)
                value = ("global", module[1], attr[1])
                self.note(value, "value")
                stack.append(value)
            elif name == "REDUCE":
                args, func = stack.pop(), stack.pop()
                self.note(func, "call")
                positions = class_arguments(func[1], func[2]) if func[0] == "global" else None
                if positions and args[0] == "tuple":
                    for i in positions:
                        if i < len(args[1]):
                            self.note(args[1][i], "class")
                stack.append(("object",))
            elif name in ("NEWOBJ", "NEWOBJ_EX"):
                if name == "NEWOBJ_EX":
                    stack.pop()
                stack.pop()
                self.note(stack.pop(), "class")
                stack.append(("object",))
            elif name == "OBJ":
                at = marks.pop()
                self.note(stack[at], "call")
                stack[at:] = [("object",)]
            elif name in ("TUPLE", "TUPLE1", "TUPLE2", "TUPLE3"):
                count = {"TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}.get(name)
                at = marks.pop() if count is None else len(stack) - count
                items = stack[at:]
                stack[at:] = [("tuple", items)]
            elif name == "MARK":
                marks.append(len(stack))
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[int(arg)] = stack[-1]
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1]
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                stack.append(memo[int(arg)])
            elif name == "PROTO":
                self.protocol = arg
            elif name == "STOP":
                return
            elif name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING", "SHORT_BINSTRING"):
                stack.append(("const", arg))
            else:
                # Everything else by its pickletools stack effect.
                before = op.stack_before
                if pickletools.markobject in before:
                    stack[marks.pop():] = []
                    before = [b for b in before if b is not pickletools.markobject and b is not pickletools.stackslice]
                for _ in before:
                    stack.pop()
                after = op.stack_after
                if name == "POP" and not before:
                    pass
                stack.extend(("other",) for _ in after)

    def pickle_all(self, obj, what, pickler=None):
        for protocol in PROTOCOLS:
            buffer = io.BytesIO()
            try:
                (pickler or pickle.Pickler)(buffer, protocol=protocol).dump(obj)
            except Exception:  # some objects refuse old protocols (e.g. __slots__ without __getstate__)
                continue
            self.protocol = protocol if protocol >= 2 else 0
            self.scan(buffer.getvalue(), "%s (protocol %d)" % (what, protocol))


def fix_imports(module, name, protocol):
    """The names Python 3 imports for a protocol 0-2 pickle (_compat_pickle)."""
    if protocol < 3:
        import _compat_pickle

        if (module, name) in _compat_pickle.NAME_MAPPING:
            return _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    return module, name


def sklearn_objects():
    """(name, object) for every estimator, fitted where a small dataset allows, plus composites."""
    import numpy as np
    from sklearn.utils import all_estimators
    from sklearn.utils.estimator_checks import _construct_instance

    rng = np.random.RandomState(0)
    X = rng.uniform(0.1, 1.0, size=(40, 4))
    y_binary = np.array([0, 1] * 20)
    y_multi = np.array([0, 1, 2, 3] * 10)
    y_reg = rng.uniform(size=40)
    texts = ["the cat sat", "a dog ran", "the dog sat", "a cat ran"] * 10
    for name, cls in all_estimators():
        try:
            estimator = _construct_instance(cls)
        except Exception:
            continue
        yield "sklearn %s (unfitted)" % name, estimator
        for y_class in (y_binary, y_multi):
            yield from fitted_variants(name, estimator, X, y_class, y_reg, texts)
    yield from composites(X, y_binary, y_multi)


def fitted_variants(name, estimator, X, y_class, y_reg, texts):
    """The estimator fitted (on numbers, else text, else dicts), or nothing if it cannot be."""
    import copy

    from sklearn.base import is_classifier, is_regressor
    from sklearn.utils.estimator_checks import _enforce_estimator_tags_X, _enforce_estimator_tags_y

    from sklearn.utils._testing import set_random_state

    estimator = copy.deepcopy(estimator)
    # Every random_state (nested ones too) fixed, so that the objects a fit makes, and so the
    # names the list holds, are the same at every run (OutputCodeClassifier's random code book
    # decided whether _ConstantPredictor appeared).
    set_random_state(estimator, 0)
    for attempt in ("tags", "text", "dicts"):
        try:
            Xa = texts if attempt == "text" else ([{"a": 1.0, "b": float(i)} for i in range(40)] if attempt == "dicts" else _enforce_estimator_tags_X(estimator, X.copy()))
            if is_classifier(estimator):
                ya = _enforce_estimator_tags_y(estimator, y_class.copy())
            elif is_regressor(estimator):
                ya = _enforce_estimator_tags_y(estimator, y_reg.copy())
            else:
                ya = y_class.copy()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fitted = estimator.fit(Xa, ya)
            yield "sklearn %s (fitted)" % name, fitted
            return
        except Exception:
            continue


def composites(X, y_binary, y_multi):
    """Pipelines, column transformers and ensembles, as people combine them."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import FeatureUnion, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.linear_model import LogisticRegression
    from sklearn.ensemble import RandomForestClassifier, GradientBoostingClassifier, HistGradientBoostingClassifier
    import pandas as pd

    frame = pd.DataFrame({"x": X[:, 0], "c": ["a", "b"] * 20})
    for y_class in (y_binary, y_multi):
        column = ColumnTransformer([("num", StandardScaler(), ["x"]), ("cat", OneHotEncoder(), ["c"])])
        yield "sklearn column transformer", make_pipeline(column, LogisticRegression()).fit(frame, y_class)
        for model in (RandomForestClassifier(n_estimators=3, random_state=0), GradientBoostingClassifier(n_estimators=3, random_state=0), HistGradientBoostingClassifier(max_iter=3, random_state=0)):
            yield "sklearn %s" % type(model).__name__, model.fit(X, y_class)
    yield "sklearn feature union", FeatureUnion([("a", StandardScaler()), ("b", StandardScaler())]).fit(X)
    # One-vs-rest over labels one of which never occurs keeps a _ConstantPredictor for it.
    from sklearn.multiclass import OneVsRestClassifier
    import numpy as np

    labels = np.stack([y_binary, np.zeros_like(y_binary)], axis=1)
    yield "sklearn one-vs-rest with a constant label", OneVsRestClassifier(LogisticRegression()).fit(X, labels)
    # The loss, tree and metric objects that estimator options select.
    from sklearn.ensemble import GradientBoostingRegressor, HistGradientBoostingRegressor
    from sklearn.linear_model import SGDClassifier, SGDRegressor
    from sklearn.neighbors import KNeighborsClassifier

    y_reg = X[:, 1]
    for loss in ("hinge", "log_loss", "modified_huber", "squared_hinge", "perceptron", "squared_error", "huber", "epsilon_insensitive", "squared_epsilon_insensitive"):
        yield "sklearn SGDClassifier %s" % loss, SGDClassifier(loss=loss, max_iter=5, random_state=0).fit(X, y_binary)
    for loss in ("squared_error", "huber", "epsilon_insensitive", "squared_epsilon_insensitive"):
        yield "sklearn SGDRegressor %s" % loss, SGDRegressor(loss=loss, max_iter=5, random_state=0).fit(X, y_reg)
    yield "sklearn GradientBoosting exponential", GradientBoostingClassifier(loss="exponential", n_estimators=2).fit(X, y_binary)
    for loss in ("squared_error", "absolute_error", "huber", "quantile"):
        yield "sklearn GradientBoostingRegressor %s" % loss, GradientBoostingRegressor(loss=loss, n_estimators=2).fit(X, y_reg)
    for loss in ("squared_error", "absolute_error", "poisson"):
        yield "sklearn HistGradientBoostingRegressor %s" % loss, HistGradientBoostingRegressor(loss=loss, max_iter=2).fit(X, y_reg)
    for algorithm in ("ball_tree", "kd_tree", "brute"):
        for metric in ("euclidean", "manhattan", "chebyshev", "minkowski"):
            yield "sklearn KNN %s %s" % (algorithm, metric), KNeighborsClassifier(algorithm=algorithm, metric=metric).fit(X, y_multi)


def numpy_objects():
    import numpy as np

    for code in "?bBhHiIlLqQefdgFDGSUVOMm":
        dtype = np.dtype(code if code not in "SUV" else code + "4")
        if code == "M":
            dtype = np.dtype("M8[s]")
        if code == "m":
            dtype = np.dtype("m8[ms]")
        yield "numpy array %s" % dtype, np.zeros((2, 3), dtype=dtype)
        yield "numpy fortran array %s" % dtype, np.asfortranarray(np.zeros((2, 3), dtype=dtype))
        if code not in "OV":
            yield "numpy scalar %s" % dtype, np.zeros(1, dtype=dtype)[0]
        yield "numpy dtype %s" % dtype, dtype
    yield "numpy big-endian", np.zeros(3, dtype=">f8")
    yield "numpy structured", np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8", (2,))])
    yield "numpy masked", np.ma.masked_array([1, 2, 3], mask=[0, 1, 0])
    yield "numpy matrix", np.matrix([[1, 2], [3, 4]])
    yield "numpy random state", np.random.RandomState(0)
    yield "numpy generator", np.random.default_rng(0)


def pandas_objects():
    import numpy as np
    import pandas as pd

    yield "pandas frame", pd.DataFrame({"i": [1, 2], "f": [0.5, 1.5], "s": ["a", "b"], "b": [True, False]})
    yield "pandas series", pd.Series([1.0, 2.0], name="x")
    yield "pandas categorical", pd.DataFrame({"c": pd.Categorical(["u", "v"])})
    yield "pandas datetime", pd.DataFrame({"t": pd.to_datetime(["2024-01-01", "2024-01-02"])})
    yield "pandas tz datetime", pd.Series(pd.date_range("2024-01-01", periods=2, tz="UTC"))
    yield "pandas timedelta", pd.Series(pd.to_timedelta([1, 2], unit="s"))
    yield "pandas period", pd.Series(pd.period_range("2024-01", periods=2, freq="M"))
    yield "pandas interval", pd.Series(pd.interval_range(0, 2))
    yield "pandas nullable int", pd.Series([1, None], dtype="Int64")
    yield "pandas nullable bool", pd.Series([True, None], dtype="boolean")
    yield "pandas string", pd.Series(["a", None], dtype="string")
    yield "pandas sparse", pd.Series(pd.arrays.SparseArray([0, 0, 1]))
    yield "pandas multiindex", pd.DataFrame({"v": [1, 2]}, index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)]))
    yield "pandas range index", pd.RangeIndex(3)
    yield "pandas datetime index", pd.date_range("2024-01-01", periods=3)
    yield "pandas timestamp", pd.Timestamp("2024-01-01")
    yield "pandas float index", pd.Index([0.5, 1.5])
    yield "pandas categorical index", pd.CategoricalIndex(["a", "b"])
    yield "numpy nan", np.nan


def scipy_objects():
    import numpy as np
    import scipy.sparse as sp

    dense = np.array([[0.0, 1.0], [2.0, 0.0]])
    for kind in ("csr_matrix", "csc_matrix", "coo_matrix", "lil_matrix", "dok_matrix", "bsr_matrix", "dia_matrix",
                 "csr_array", "csc_array", "coo_array"):
        if hasattr(sp, kind):
            yield "scipy %s" % kind, getattr(sp, kind)(dense)


def torch_objects():
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 2))
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(3, 4)).sum().backward()
    optimizer.step()
    yield "torch state dict", model.state_dict()
    yield "torch checkpoint", {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 1}
    yield "torch model", model
    yield "torch parameter", torch.nn.Parameter(torch.ones(2))
    yield "torch size", torch.Size([2, 3])
    for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8, torch.uint8, torch.int16,
                  torch.int32, torch.int64, torch.bool, torch.complex64, torch.complex128):
        yield "torch tensor %s" % dtype, torch.zeros(2, dtype=dtype)
        yield "torch dtype %s" % dtype, dtype
    yield "torch sgd", torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9).state_dict()
    yield "torch device", torch.device("cpu")


class TorchUses:
    """torch.save's pickles (the zip format's data.pkl and the legacy format's pickles)."""

    @staticmethod
    def streams(obj):
        import torch

        buffer = io.BytesIO()
        torch.save(obj, buffer)
        with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
            for name in archive.namelist():
                if name.endswith(".pkl"):
                    yield archive.read(name)
        legacy = io.BytesIO()
        torch.save(obj, legacy, _use_new_zipfile_serialization=False)
        data = legacy.getvalue()
        stream = io.BytesIO(data)
        # magic number, protocol version, sys info, the object: four pickles back to back
        for _ in range(4):
            start = stream.tell()
            for _op in pickletools.genops(stream):
                pass
            yield data[start:stream.tell()]


def joblib_streams(obj):
    """joblib.dump's pickle stream, with the array buffers it would write in between left out."""
    import joblib.numpy_pickle as jnp

    class NoBuffers(jnp.NumpyPickler):
        def save(self, value):
            if self.np is not None and type(value) in (self.np.ndarray, self.np.matrix, self.np.memmap):
                return jnp.Pickler.save(self, self._create_array_wrapper(value))
            return jnp.Pickler.save(self, value)

    for protocol in PROTOCOLS:
        buffer = io.BytesIO()
        try:
            NoBuffers(buffer, protocol=protocol).dump(obj)
        except Exception:
            continue
        yield protocol, buffer.getvalue()


def versions():
    import joblib
    import numpy
    import pandas
    import scipy
    import sklearn
    import torch

    return [("python", sys.version.split()[0]), ("scikit-learn", sklearn.__version__), ("joblib", joblib.__version__),
            ("numpy", numpy.__version__), ("scipy", scipy.__version__), ("pandas", pandas.__version__),
            ("torch", torch.__version__)]


def torch_module_classes():
    import inspect
    import torch

    for name in dir(torch.nn):
        value = getattr(torch.nn, name)
        if inspect.isclass(value) and issubclass(value, torch.nn.Module):
            yield value.__module__, value.__qualname__


def read_never_allowed():
    """The module prefixes and names in src/ml/policy-never.ts (the scanner's list)."""
    import re

    with open(os.path.join(REPO, "src", "ml", "policy-never.ts"), encoding="utf-8") as f:
        return set(re.findall(r"^\s*\['([A-Za-z0-9_.]+)',", f.read(), re.M))


def never_allowed(never, module, name):
    full = "%s.%s" % (module, name)
    parts = full.split(".")
    return any(".".join(parts[:i]) in never for i in range(1, len(parts) + 1))


def generate():
    warnings.simplefilter("ignore")
    uses = Uses()
    for source in (sklearn_objects, numpy_objects, pandas_objects, scipy_objects, torch_objects):
        for what, obj in source():
            uses.pickle_all(obj, what)
            if source is torch_objects:
                for stream in TorchUses.streams(obj):
                    uses.protocol = 2
                    uses.scan(stream, "%s (torch.save)" % what)
            if source in (sklearn_objects, numpy_objects):
                for protocol, stream in joblib_streams(obj):
                    uses.protocol = protocol if protocol >= 2 else 0
                    uses.scan(stream, "%s (joblib, protocol %d)" % (what, protocol))
    from sklearn.utils import all_estimators

    for _name, cls in all_estimators():
        uses.uses[(cls.__module__, cls.__qualname__)].add("class")
    for module, qualname in torch_module_classes():
        uses.uses[(module, qualname)].add("class")
    never = read_never_allowed()
    entries, dropped = [], []
    for (module, name), seen in sorted(uses.uses.items()):
        if never_allowed(never, module, name):
            dropped.append("%s.%s" % (module, name))
            continue
        kinds = [k for k in ("class", "call", "value") if k in seen]
        if len(kinds) > 1 and "value" in kinds:
            kinds.remove("value")  # every entry may be referenced
        entries.append((module, name, kinds))
    return entries, dropped


def render(entries, dropped):
    lines = [
        "// GENERATED by scripts/gen-model-policy.py from the installed libraries; do not edit.",
        "// Regenerate: /usr/bin/python3 scripts/gen-model-policy.py (a test checks it is current).",
        "// Library versions: " + ", ".join("%s %s" % kv for kv in versions()),
    ]
    if dropped:
        lines.append("// Observed but never allowed, left out: " + ", ".join(dropped))
    lines += [
        "",
        "/** Where the default policy came from. */",
        "export const DEFAULT_POLICY_SOURCE: readonly (readonly [string, string])[] = [",
    ]
    lines += ["  ['%s', '%s']," % kv for kv in versions()]
    lines += [
        "];",
        "",
        "/**",
        " * [module, qualname, uses]: `class` may be instantiated as pickling rebuilds objects (NEWOBJ,",
        " * copyreg._reconstructor, numpy's _reconstruct, then BUILD); `call` may be called by REDUCE;",
        " * `value` may only be referenced. Any entry may be referenced.",
        " */",
        "export const DEFAULT_POLICY_ENTRIES: readonly (readonly [string, string, string])[] = [",
    ]
    lines += ["  ['%s', '%s', '%s']," % (m, n, " ".join(k)) for m, n, k in entries]
    lines += ["];", ""]
    return "\n".join(lines)


def main(argv):
    parser = argparse.ArgumentParser(prog="gen-model-policy.py")
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file is not current")
    args = parser.parse_args(argv)
    text = render(*generate())
    if args.check:
        with open(OUTPUT, encoding="utf-8") as f:
            current = f.read()
        if current != text:
            print("gen-model-policy: %s is not current; run /usr/bin/python3 scripts/gen-model-policy.py" % OUTPUT, file=sys.stderr)
            return 1
        print("gen-model-policy: %s is current" % OUTPUT)
        return 0
    with open(OUTPUT, "w", encoding="utf-8") as f:
        f.write(text)
    print("gen-model-policy: wrote %s" % OUTPUT)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
