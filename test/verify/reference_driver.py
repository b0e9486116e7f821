"""JSON-in/JSON-out driver for differential tests against the Python reference.

Run with Debian's /usr/bin/python3 (in-toto 1.3.1, Python 3.11):

  reference_driver.py fnmatch   [[pattern, name], ...]        -> [bool, ...]
  reference_driver.py shlex     [string, ...]                 -> [{"tokens": [...]} | {"error": str}, ...]
  reference_driver.py unpack    [[token, ...], ...]           -> [{"ok": bool, "error"?: str}, ...]
  reference_driver.py rules     [{"source_name", "source_type", "rules",
                                  "links": {name: {"materials": {...}, "products": {...}}}}, ...]
                                                               -> [{"ok": bool, "error"?: str}, ...]

The cases are read from stdin and the results written to stdout, in order, one JSON array.
"""
import fnmatch
import json
import logging
import shlex
import sys

logging.disable(logging.CRITICAL)


def run_fnmatch(cases):
    return [fnmatch.fnmatchcase(name, pattern) for pattern, name in cases]


def run_shlex(cases):
    out = []
    for text in cases:
        try:
            out.append({"tokens": shlex.split(text)})
        except ValueError as error:
            out.append({"error": str(error)})
    return out


def run_unpack(cases):
    import in_toto.rulelib
    out = []
    for rule in cases:
        try:
            in_toto.rulelib.unpack_rule(rule)
            out.append({"ok": True})
        except Exception as error:  # the verdict is what we compare, not the type
            out.append({"ok": False, "error": type(error).__name__})
    return out


def run_rules(cases):
    from in_toto import verifylib
    from in_toto.exceptions import RuleVerificationError
    from in_toto.models.link import Link
    from in_toto.models.metadata import Metablock

    out = []
    for case in cases:
        links = {
            name: Metablock(signed=Link(name=name, materials=link["materials"], products=link["products"]))
            for name, link in case["links"].items()
        }
        try:
            verifylib.verify_item_rules(case["source_name"], case["source_type"], case["rules"], links)
            out.append({"ok": True})
        except RuleVerificationError:
            out.append({"ok": False, "error": "RuleVerificationError"})
        except Exception as error:  # a crash in the reference is reported, not hidden
            out.append({"ok": False, "error": type(error).__name__ + ": " + str(error)[:200]})
    return out


MODES = {"fnmatch": run_fnmatch, "shlex": run_shlex, "unpack": run_unpack, "rules": run_rules}

if __name__ == "__main__":
    cases = json.load(sys.stdin)
    json.dump(MODES[sys.argv[1]](cases), sys.stdout)
