"""Differential oracle: the Python reference (in-toto 1.3.1, pathspec 0.11), driven in batches.

Reads one JSON request on stdin, writes one JSON answer on stdout:
  {"op": "record", "cases": [{"base", "paths", "exclude", "lstrip"}]}
      -> [{"ok": {name: {alg: hex}}} | {"error": ExceptionClassName}]
  {"op": "pathspec", "cases": [{"patterns": [...], "paths": [...]}]}
      -> [{"matches": [bool, ...]} | {"error": ExceptionClassName}]
  {"op": "normpath", "paths": [...]} -> [str, ...]
Run with /usr/bin/python3 (the interpreter the Debian packages belong to).
"""
import json
import os
import posixpath
import sys
import warnings

warnings.simplefilter("ignore")


def record(cases):
    from in_toto.runlib import record_artifacts_as_dict
    out = []
    cwd = os.getcwd()
    for case in cases:
        try:
            result = record_artifacts_as_dict(
                case["paths"],
                exclude_patterns=case.get("exclude"),
                base_path=case["base"],
                follow_symlink_dirs=True,
                lstrip_paths=case.get("lstrip"),
            )
            out.append({"ok": result})
        except Exception as e:  # the class name is what the test compares
            out.append({"error": type(e).__name__})
        finally:
            os.chdir(cwd)
    return out


def pathspec_cases(cases):
    from pathspec import PathSpec
    out = []
    for case in cases:
        try:
            spec = PathSpec.from_lines("gitwildmatch", case["patterns"])
            out.append({"matches": [spec.match_file(p) for p in case["paths"]]})
        except Exception as e:
            out.append({"error": type(e).__name__})
    return out


def main():
    request = json.load(sys.stdin)
    op = request["op"]
    if op == "record":
        answer = record(request["cases"])
    elif op == "pathspec":
        answer = pathspec_cases(request["cases"])
    elif op == "normpath":
        answer = [posixpath.normpath(p) for p in request["paths"]]
    else:
        raise SystemExit("unknown op " + op)
    json.dump(answer, sys.stdout)


main()
