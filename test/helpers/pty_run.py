"""Runs a command under a pseudo-terminal (a new session whose controlling terminal is the
pty), as a user at an interactive terminal would, and prints one JSON line: the exit status
(or null), whether it was killed at the deadline, and everything it wrote to the terminal.
Nothing is ever typed into the terminal: a program that prompts there blocks until the
deadline. Run with /usr/bin/python3:
    pty_run.py SECONDS COMMAND [ARGS...]"""
import json
import os
import pty
import select
import signal
import sys
import time

seconds = float(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
output = b""
deadline = time.time() + seconds
status = None
timed_out = False
while True:
    finished, raw = os.waitpid(pid, os.WNOHANG)
    readable, _, _ = select.select([fd], [], [], 0.05)
    if readable:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        output += data
    if finished:
        # Drain what is left, then stop.
        while True:
            readable, _, _ = select.select([fd], [], [], 0.05)
            if not readable:
                break
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            output += data
        status = os.waitstatus_to_exitcode(raw)
        break
    if time.time() > deadline:
        timed_out = True
        os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        break
print(json.dumps({"status": status, "timedOut": timed_out, "output": output.decode("utf-8", "replace")}))
