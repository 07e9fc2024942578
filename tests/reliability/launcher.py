#!/usr/bin/env python3
"""A socket-activation style launcher for `charge-gate serve --listen inherit`.

    launcher.py --socket PATH --pidfile FILE [--restart-delay S] [--log FILE] -- CMD ARGS...

Like systemd's charge-gate.socket + charge-gate.service (StandardInput=socket, Restart=always):
it creates and holds the listening unix socket, runs CMD with that socket on fd 0, writes the
child's pid to FILE, and whenever the child exits (killed, crashed or stopped) starts it again
after `--restart-delay` seconds. The socket stays open the whole time, so connections that
arrive while no child runs wait in its backlog. SIGTERM/SIGINT: stop the child (SIGTERM) and
exit. The launcher dies with its parent (PR_SET_PDEATHSIG), and the child with the launcher.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time


def die_with_parent():
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    except Exception:  # noqa: BLE001
        pass


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--pidfile", required=True)
    ap.add_argument("--restart-delay", type=float, default=0.1)
    ap.add_argument("--log", default=None, help="the child's stdout/stderr (appended)")
    ap.add_argument("--backlog", type=int, default=1024)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd:
        ap.error("no command")
    die_with_parent()

    if os.path.exists(a.socket):
        os.unlink(a.socket)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(a.socket)
    os.chmod(a.socket, 0o660)
    sock.listen(a.backlog)
    sock.set_inheritable(True)

    stopping = False
    child: subprocess.Popen | None = None

    def on_stop(signum, frame):
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)

    starts = 0
    while not stopping:
        out = open(a.log, "ab") if a.log else subprocess.DEVNULL
        starts += 1
        print(f"{time.time():.3f} starting child #{starts}: {' '.join(cmd)}", flush=True)
        child = subprocess.Popen(cmd, stdin=sock.fileno(), stdout=out, stderr=subprocess.STDOUT,
                                 close_fds=True, preexec_fn=die_with_parent)
        if out is not subprocess.DEVNULL:
            out.close()
        with open(a.pidfile + ".tmp", "w") as f:
            f.write(str(child.pid))
        os.replace(a.pidfile + ".tmp", a.pidfile)
        while True:
            try:
                rc = child.wait()
                break
            except InterruptedError:
                continue
        print(f"{time.time():.3f} child {child.pid} exited with {rc}", flush=True)
        if stopping:
            break
        time.sleep(a.restart_delay)
    try:
        child.wait(timeout=10) if child else None
    except subprocess.TimeoutExpired:
        child.kill()
    sock.close()
    try:
        os.unlink(a.socket)
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
