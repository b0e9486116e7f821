#!/usr/bin/env python3
"""The differential oracle for the pickle scanner: what does CPython's own loader import?

Reads pickles from stdin (each a 4-byte little-endian length and the bytes), loads each with
the C unpickler, whose find_class records the (module, name) it is asked for and returns an
inert stand-in instead of importing anything; persistent_load does the same. Prints one JSON
line per pickle: {"imports": [[module, name], ...], "ok": bool}. Names are as written (before
fix_imports renames Python 2 names: a find_class override receives them raw).

Nothing is imported or called: the stand-in accepts every call and attribute set. A memory cap
turns hostile memo indices (a PUT at index 2**31 makes the C loader allocate a huge memo list)
into MemoryError instead of exhausting the machine.
"""
import io
import json
import pickle
import struct
import sys

try:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
except (ImportError, ValueError, OSError):
    pass


class StandIn:
    """Whatever a pickle asks for: callable, constructible, and it absorbs state and items."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return StandIn()

    def __setstate__(self, state):
        pass

    def __setitem__(self, key, value):
        pass

    def append(self, value):
        pass

    def extend(self, values):
        pass

    def add(self, value):
        pass


class RecordingUnpickler(pickle.Unpickler):
    def __init__(self, stream, imports):
        super().__init__(stream)
        self.imports = imports

    def find_class(self, module, name):
        self.imports.append([module, name])
        return StandIn

    def persistent_load(self, pid):
        return StandIn()


def main():
    data = sys.stdin.buffer.read()
    position = 0
    out = sys.stdout
    while position < len(data):
        (length,) = struct.unpack_from("<I", data, position)
        position += 4
        payload = data[position : position + length]
        position += length
        imports = []
        ok = True
        try:
            RecordingUnpickler(io.BytesIO(payload), imports).load()
        except BaseException as error:  # anything at all: the verdict is only "did it load"
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                raise
            ok = False
        out.write(json.dumps({"imports": imports, "ok": ok}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
