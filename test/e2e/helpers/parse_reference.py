"""Parses command lines with the reference's own argparse parsers (in-toto 1.3.1) and prints,
for each, the namespace or the usage error, as JSON. Run with /usr/bin/python3:
    parse_reference.py TOOL < cases.json      (TOOL: run, record, mock, verify, sign or keygen)
Only parses: nothing is executed, no key is read."""
import contextlib
import io
import json
import sys

from in_toto import in_toto_keygen, in_toto_mock, in_toto_record, in_toto_run, in_toto_sign, in_toto_verify

PARSERS = {
    "run": in_toto_run,
    "record": in_toto_record,
    "mock": in_toto_mock,
    "verify": in_toto_verify,
    "sign": in_toto_sign,
    "keygen": in_toto_keygen,
}


class Stop(Exception):
    pass


def parse(module, argv):
    parser = module.create_parser()

    def error(message):
        raise Stop({"error": message})

    def exit_(status=0, message=None):
        raise Stop({"exit": status})

    # Subparsers (in-toto-record) are separate parser objects: patch them too.
    parsers = [parser]
    for action in parser._actions:
        parsers.extend(getattr(action, "choices", None).values() if isinstance(getattr(action, "choices", None), dict) else [])
    for p in parsers:
        p.error = error
        p.exit = exit_
        p.print_help = lambda *a, **k: None
        p.print_usage = lambda *a, **k: None
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return {"ok": vars(parser.parse_args(argv))}
    except Stop as stop:
        return stop.args[0]


def main():
    module = PARSERS[sys.argv[1]]
    cases = json.load(sys.stdin)
    json.dump([parse(module, argv) for argv in cases], sys.stdout)


main()
