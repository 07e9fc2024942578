#!/usr/bin/env python3
"""Helper of bench/run: runs wrk over the cases, samples CPU and Redis counters, writes the
markdown report. Standard library only. Not meant to be called by hand (bench/run sets up the
processes and passes their ids in a JSON spec).

    benchlib.py freeport
    benchlib.py many-routes OUT.yaml --base BASE.yaml --routes 5000 --pools 1000
    benchlib.py prefill --key-prefix K --subject-prefix P --count N --current C --px MS
    benchlib.py measure SPEC.json OUT.json
    benchlib.py keepalive-conf KA.conf --edge EDGE.conf --dir KA_DIR --shared-dir DIR --snippets SNIPPETS
    benchlib.py report main META.json RUNS.json [HIGH_RUNS.json]
    benchlib.py callgrind-compare BASE_NAME BASE.out BASE_REQUESTS CASE_NAME CASE.out CASE_REQUESTS
    benchlib.py report scale META.json RUNS.json [RUNS.json...]

A spec's "stacks" name what a case runs against (its "stack", default "edge"): the URL, the
processes whose CPU is sampled, the Redis whose counters are read and the nginx error log
whose new lines are counted. The peer has no responder (its CPU columns are n/a).
"""

import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def die(message):
    print(f"bench: {message}", file=sys.stderr)
    sys.exit(1)


# --- small helpers --------------------------------------------------------------------------

def freeport():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


def proc_cpu_split(pid):
    """(utime, stime) in seconds of a whole process (every thread), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read().decode("ascii", "replace")
    fields = data[data.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime is field 14, stime field 15.
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def proc_cpu_seconds(pid):
    u, s = proc_cpu_split(pid)
    return u + s


def proc_ctx_switches(pid):
    """Voluntary + involuntary context switches summed over the process's threads."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except OSError:
            pass  # a thread that just ended
    return total


def redis_info(sock_path, section):
    """INFO <section> over the unix socket, parsed into a dict of strings."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(sock_path)
        s.sendall(f"INFO {section}\r\n".encode())
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError("redis closed the connection")
            buf += chunk
        head, _, rest = buf.partition(b"\r\n")
        if not head.startswith(b"$"):
            raise RuntimeError(f"unexpected INFO reply {head[:80]!r}")
        size = int(head[1:])
        while len(rest) < size + 2:
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError("redis closed the connection")
            rest += chunk
    out = {}
    for line in rest[:size].decode("utf-8", "replace").splitlines():
        if ":" in line and not line.startswith("#"):
            k, _, v = line.partition(":")
            out[k] = v
    return out


def redis_sample(sock_path):
    """One Redis node's CPU (used_cpu_sys + used_cpu_user, seconds), and per command its calls
    and the µs spent inside it (INFO commandstats calls= and usec=)."""
    cpu = redis_info(sock_path, "cpu")
    stats = redis_info(sock_path, "commandstats")
    calls, usec = {}, {}
    for key, value in stats.items():
        if not key.startswith("cmdstat_"):
            continue
        name = key[len("cmdstat_"):]
        m = re.search(r"(?:^|,)calls=(\d+)", value)
        if m:
            calls[name] = int(m.group(1))
        m = re.search(r"(?:^|,)usec=(\d+)", value)
        if m:
            usec[name] = int(m.group(1))
    return float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]), calls, usec


def redis_nodes_of(stack):
    """The Redis nodes whose counters a stack's runs read: its "redis_nodes" (a cluster's
    primaries, each {"name", "socket"}), else its one Redis, named "redis"."""
    return stack.get("redis_nodes") or [{"name": "redis", "socket": stack["redis_socket"]}]


def stack_of(spec, case):
    """What `case` runs against: its stack from spec["stacks"], or (specs without stacks: the
    --scale phases) the spec's own url_base, pids, redis_socket."""
    stacks = spec.get("stacks")
    if stacks:
        name = case.get("stack", "edge")
        if name not in stacks:
            raise RuntimeError(f"{case['name']}: no stack {name!r} in the spec")
        return stacks[name]
    return {"url_base": spec["url_base"], "pids": spec["pids"], "redis_socket": spec["redis_socket"],
            "error_log": spec.get("error_log")}


ERROR_LEVELS = ("[error]", "[crit]", "[alert]", "[emerg]")


def log_size(path):
    try:
        return os.path.getsize(path) if path else 0
    except OSError:
        return 0


def count_error_lines(path, offset):
    """nginx error-log lines at level error or worse written after `offset` (upstream timeouts,
    refused or reset FastCGI connections, the peer's Redis errors)."""
    if not path:
        return 0
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return 0
    return sum(1 for line in text.splitlines() if any(level in line for level in ERROR_LEVELS))


def fastcgi_connections(url):
    """The responder's charge_gate_fastcgi_connections_total (FastCGI connections it accepted;
    a kept one counts once), scraped from `url`; None when it has no such metric (a responder
    from before the event-loop worker) or no url (the peer)."""
    if not url:
        return None
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            text = reply.read().decode("utf-8", "replace")
    except OSError:
        return None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "charge_gate_fastcgi_connections_total":
            return float(parts[1])
    return None


def sample(stack):
    s = {"t": time.monotonic()}
    responder = stack["pids"].get("responder")
    if responder:
        s["responder_user"], s["responder_sys"] = proc_cpu_split(responder)
        s["responder"] = s["responder_user"] + s["responder_sys"]
        s["responder_cs"] = proc_ctx_switches(responder)
    else:  # the peer: no responder
        s["responder_user"] = s["responder_sys"] = s["responder"] = s["responder_cs"] = float("nan")
    s["nginx"] = proc_cpu_seconds(stack["pids"]["nginx_worker"])
    # Every node of the stack's Redis (one, or a cluster's primaries): summed for the redis
    # columns, kept apart for the per-node table (Redis CPU per spend).
    s["redis"], s["calls"], s["nodes"] = 0.0, {}, {}
    for node in redis_nodes_of(stack):
        cpu, calls, usec = redis_sample(node["socket"])
        s["nodes"][node["name"]] = {"cpu": cpu, "calls": calls, "usec": usec}
        s["redis"] += cpu
        for k, v in calls.items():
            s["calls"][k] = s["calls"].get(k, 0) + v
    s["error_log"] = log_size(stack.get("error_log"))
    s["fastcgi_connections"] = fastcgi_connections(stack.get("metrics_url"))
    return s


UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def to_ms(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"cannot parse latency {text!r}")
    return float(m.group(1)) * UNIT[m.group(2)]


def parse_wrk(out):
    r = {}
    m = re.search(r"(\d+) requests in ([0-9.]+)(us|ms|s|m)", out)
    if not m:
        raise ValueError("no 'requests in' line in wrk output")
    r["requests"] = int(m.group(1))
    r["wrk_seconds"] = float(m.group(2)) * UNIT[m.group(3)] / 1000.0
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    r["rps"] = float(m.group(1)) if m else r["requests"] / r["wrk_seconds"]
    lat = {}
    in_dist = False
    for line in out.splitlines():
        if "Latency Distribution" in line:
            in_dist = True
            continue
        if in_dist:
            m = re.match(r"\s+(\d+)%\s+(\S+)", line)
            if m:
                lat[int(m.group(1))] = to_ms(m.group(2))
            else:
                in_dist = False
    if 50 not in lat or 99 not in lat:
        raise ValueError("no latency distribution in wrk output (was --latency given?)")
    r["p50_ms"], r["p99_ms"] = lat[50], lat[99]
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    r["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["socket"] = dict(zip(("connect", "read", "write", "timeout"), (int(x) for x in m.groups()))) if m else \
        {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    r["socket_errors"] = sum(r["socket"].values())
    return r


# --- config generation ----------------------------------------------------------------------

def many_routes(argv):
    import argparse
    p = argparse.ArgumentParser(prog="many-routes")
    p.add_argument("out")
    p.add_argument("--base", required=True, help="a config whose pools/routes lists come last")
    p.add_argument("--routes", type=int, default=5000)
    p.add_argument("--pools", type=int, default=1000)
    a = p.parse_args(argv)
    with open(a.base) as f:
        base = f.read()
    # The base file ends with its own pools: and routes: lists; its pools go first, then
    # ours; same for routes. Keep it simple: split at the top-level "routes:" line.
    head, sep, base_routes = base.partition("\nroutes:\n")
    if not sep:
        die(f"{a.base}: no top-level 'routes:' line")
    lines = [head.rstrip("\n")]
    for i in range(a.pools):
        lines.append(f"  - id: many-{i}\n    maxCharges: 1000\n    rechargeIntervalHours: 1")
    lines.append("routes:")
    lines.append(base_routes.rstrip("\n"))
    for i in range(a.routes):
        pool = f"many-{i % a.pools}"
        if i % 2 == 0:
            # Siblings of the floor URI's first segment: the lookup of /floor/t.txt walks into
            # a node with thousands of children before it finds nothing.
            prefix = f"/floor/x{i}"
        else:
            prefix = f"/svc{i % 50}/op{i}"
        lines.append(f"  - prefix: {prefix}\n    pools: [{pool}]")
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")


def prefill(argv):
    """RESP protocol for `redis-cli --pipe`: SET KEY {"current":C,"lastUpdatedAt":now} PX MS."""
    import argparse
    p = argparse.ArgumentParser(prog="prefill")
    p.add_argument("--key-prefix", required=True)
    p.add_argument("--subject-prefix", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--current", type=int, required=True)
    p.add_argument("--px", type=int, required=True)
    a = p.parse_args(argv)
    now = int(time.time() * 1000)
    value = f'{{"current":{a.current},"lastUpdatedAt":{now}}}'.encode()
    px = str(a.px).encode()
    out = sys.stdout.buffer
    tail = b"$%d\r\n%s\r\n$2\r\nPX\r\n$%d\r\n%s\r\n" % (len(value), value, len(px), px)
    batch = []
    for i in range(a.count):
        key = f"{a.key_prefix}{a.subject_prefix}{i}".encode()
        batch.append(b"*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n" % (len(key), key) + tail)
        if len(batch) >= 10000:
            out.write(b"".join(batch))
            batch = []
    out.write(b"".join(batch))
    out.flush()


def keepalive_conf(argv):
    """The keepalive profile's nginx.conf from a second render of the stack's template (its own
    DIR: pid, logs, caches, the stand-in apps' sockets): the auth location from
    charge-gate-server-keepalive.conf instead of charge-gate-server.conf, `keepalive 32;` in
    `upstream charge_gate`, and the responder's socket and the static file those of the edge
    stack. Checked line by line against the edge profile's config: with the two DIRs taken as
    one, those are the only differences."""
    import argparse
    import difflib
    p = argparse.ArgumentParser(prog="keepalive-conf")
    p.add_argument("conf")
    p.add_argument("--edge", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--shared-dir", required=True)
    p.add_argument("--snippets", required=True)
    p.add_argument("--keepalive", type=int, default=32)
    a = p.parse_args(argv)
    with open(a.conf) as f:
        text = f.read()
    with open(a.edge) as f:
        edge = f.read()
    own, shared = a.dir.rstrip("/"), a.shared_dir.rstrip("/")
    text = text.replace(f"{own}/charge.sock", f"{shared}/charge.sock").replace(f"{own}/www/", f"{shared}/www/")
    old_include = f"include {a.snippets}/charge-gate-server.conf;"
    new_include = f"include {a.snippets}/charge-gate-server-keepalive.conf;"
    if text.count(old_include) != 1:
        die(f"keepalive-conf: expected one '{old_include}' in {a.conf}, found {text.count(old_include)}")
    text = text.replace(old_include, new_include)
    m = re.search(r"(\n( *)upstream charge_gate \{\n( *)server unix:" + re.escape(shared) + r"/charge\.sock;\n)", text)
    if not m:
        die(f"keepalive-conf: no 'upstream charge_gate {{ server unix:{shared}/charge.sock; }}' in {a.conf}")
    text = text.replace(m.group(1), m.group(1) + f"{m.group(3)}keepalive {a.keepalive};\n", 1)
    # The check: with the two DIRs and the two ports taken as one, only the include and the
    # keepalive line differ from the edge config.
    def same_port(t):
        return re.sub(r"listen 127\.0\.0\.1:\d+;", "listen 127.0.0.1:PORT;", t)
    diff = [line for line in difflib.unified_diff(same_port(edge).splitlines(), same_port(text.replace(own, shared)).splitlines(),
                                                  lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    expected = [f"-{line}" for line in edge.splitlines() if line.strip() == old_include]
    expected += [f"+{line.replace(old_include, new_include)}" for line in edge.splitlines() if line.strip() == old_include]
    expected += [f"+{m.group(3)}keepalive {a.keepalive};"]
    if sorted(diff) != sorted(expected):
        die("keepalive-conf: the keepalive profile's nginx.conf differs from the edge one in more than the "
            "server snippet and the upstream's keepalive:\n" + "\n".join(diff))
    with open(a.conf, "w") as f:
        f.write(text)


# --- measuring ------------------------------------------------------------------------------

def reload_config(spec, source):
    """Copies `source` over the served config and SIGHUPs the responder; waits for its log line."""
    log = spec["gate_log"]
    offset = os.path.getsize(log)
    with open(source) as f:
        text = f.read()
    with open(spec["serve_config"]) as f:
        if f.read() == text:
            return "already served"
    tmp = spec["serve_config"] + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, spec["serve_config"])
    os.kill(spec["pids"]["responder"], signal.SIGHUP)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(log, "rb") as f:
            f.seek(offset)
            new = f.read().decode("utf-8", "replace")
        if "config reload failed" in new:
            die(f"responder rejected {source} on reload (see {log})")
        m = re.search(r"config reloaded: (\d+) pools, (\d+) routes", new)
        if m:
            return f"{m.group(1)} pools, {m.group(2)} routes"
        time.sleep(0.05)
    die(f"responder did not log a reload of {source} within 30 s (see {log})")


def run_wrk(spec, case, seconds, latency=True):
    cmd = ["wrk", f"-t{spec['threads']}", f"-c{case.get('connections', spec['connections'])}", f"-d{seconds}s",
           "--timeout", "5s"]
    if latency:
        cmd.append("--latency")
    if case.get("script"):
        cmd += ["-s", case["script"]]
    cmd.append(stack_of(spec, case)["url_base"] + case["path"])
    env = dict(os.environ)
    env.update({k: str(v) for k, v in case.get("env", {}).items()})
    env["WRK_THREADS"] = str(spec["threads"])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        # Read everything first, then reap with wait4 for wrk's own CPU time.
        out = proc.stdout.read().decode("utf-8", "replace")
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    except BaseException:
        # Interrupted (SIGTERM/SIGINT from bench/run's trap): never leave wrk behind.
        proc.kill()
        proc.wait()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited {proc.returncode}: {out.strip()[-300:]}")
    return out, usage.ru_utime + usage.ru_stime, " ".join(cmd)


def measure(argv):
    spec_path, out_path = argv
    with open(spec_path) as f:
        spec = json.load(f)
    cases = spec["cases"]
    runs = []
    active_config = None
    total = spec["rounds"] * len(cases)
    done = 0
    for rnd in range(spec["rounds"]):
        # Round-robin, starting one case later each round: drift and order hit every case alike.
        order = cases[rnd % len(cases):] + cases[:rnd % len(cases)]
        for case in order:
            done += 1
            if case.get("config") and case["config"] != active_config:
                loaded = reload_config(spec, case["config"])
                active_config = case["config"]
                print(f"  [reload] {os.path.basename(case['config'])}: {loaded}", file=sys.stderr)
            stack = stack_of(spec, case)
            if spec["warmup"] > 0:
                run_wrk(spec, case, spec["warmup"], latency=False)
            before = sample(stack)
            out, wrk_cpu, cmd = run_wrk(spec, case, spec["duration"])
            after = sample(stack)
            try:
                r = parse_wrk(out)
            except ValueError as e:
                raise RuntimeError(f"{case['name']}: {e}\n{out}")
            n = max(r["requests"], 1)
            calls = {k: after["calls"].get(k, 0) - before["calls"].get(k, 0) for k in after["calls"]}
            calls = {k: v for k, v in calls.items() if v and k != "info"}  # our own INFO calls
            # Per Redis node (a cluster's primaries apart): its CPU, its EVALSHAs (each one spend
            # on the allowed path: one script per spend in one slot) and the µs inside them.
            nodes = []
            for name, b in before["nodes"].items():
                a = after["nodes"][name]
                nodes.append({
                    "name": name,
                    "cpu_s": a["cpu"] - b["cpu"],
                    "evalsha": a["calls"].get("evalsha", 0) - b["calls"].get("evalsha", 0),
                    "evalsha_usec": a["usec"].get("evalsha", 0) - b["usec"].get("evalsha", 0),
                    "cmds": sum(a["calls"].get(k, 0) - b["calls"].get(k, 0) for k in a["calls"] if k != "info"),
                    # Per command: calls and µs inside it (the script's own commands included).
                    "by_command": {k: [a["calls"][k] - b["calls"].get(k, 0), a["usec"].get(k, 0) - b["usec"].get(k, 0)]
                                   for k in a["calls"] if k != "info" and a["calls"][k] != b["calls"].get(k, 0)},
                })
            dcpu = after["responder"] - before["responder"]
            r.update({
                "round": rnd + 1,
                "stack": case.get("stack", "edge"),
                "connections": case.get("connections", spec["connections"]),
                "nginx_errors": count_error_lines(stack.get("error_log"), before["error_log"]),
                # FastCGI connections the responder accepted per request (1 without keepalive;
                # the scrape after the run opens one of its own, not counted).
                "fastcgi_connections": (max(after["fastcgi_connections"] - before["fastcgi_connections"] - 1, 0) / n
                                        if before["fastcgi_connections"] is not None and after["fastcgi_connections"] is not None
                                        else float("nan")),
                "responder_sys_share": (after["responder_sys"] - before["responder_sys"]) / dcpu if dcpu > 0 else float("nan"),
                "responder_cs": (after["responder_cs"] - before["responder_cs"]) / n,
                "case": case["name"],
                "wall_seconds": after["t"] - before["t"],
                "cpu_us": {
                    "responder": (after["responder"] - before["responder"]) * 1e6 / n,
                    "nginx": (after["nginx"] - before["nginx"]) * 1e6 / n,
                    "redis": (after["redis"] - before["redis"]) * 1e6 / n,
                    "wrk": wrk_cpu * 1e6 / n,
                },
                "redis_cmds": sum(calls.values()) / n,
                "redis_nodes": nodes,
                "evalsha": calls.get("evalsha", 0) / n,
                "eval": calls.get("eval", 0) / n,
                "calls_by_command": {k: v / n for k, v in sorted(calls.items())},
                "expect": case.get("expect", "2xx"),
                "wrk_command": cmd,
            })
            bad = ""
            if r["expect"] == "2xx" and r["non2xx"]:
                bad = f"  !! {r['non2xx']} non-2xx answers"
            if r["expect"] == "non2xx" and r["non2xx"] != r["requests"]:
                bad = f"  !! {r['requests'] - r['non2xx']} answers were 2xx (expected every one denied)"
            if r["socket_errors"]:
                bad += f"  !! {r['socket_errors']} socket errors ({', '.join(f'{k} {v}' for k, v in r['socket'].items() if v)})"
            if r["nginx_errors"]:
                bad += f"  !! {r['nginx_errors']} error lines in nginx's log"
            responder = "" if r["cpu_us"]["responder"] != r["cpu_us"]["responder"] else \
                f"  responder {r['cpu_us']['responder']:.1f} µs/req"
            print(f"  [{done}/{total}] round {rnd + 1} {case['name']:<26} {r['rps']:>10.0f} req/s  "
                  f"p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms{responder}{bad}", file=sys.stderr)
            runs.append(r)
    with open(out_path, "w") as f:
        json.dump({"spec": spec, "runs": runs}, f, indent=1)


# --- report ---------------------------------------------------------------------------------

def med(xs):
    return statistics.median(xs) if xs else float("nan")


def summarize(runs):
    """Per case, in first-seen order."""
    by = {}
    for r in runs:
        by.setdefault(r["case"], []).append(r)
    out = {}
    for name, rs in by.items():
        rps = [r["rps"] for r in rs]
        out[name] = {
            "n": len(rs),
            "rps": med(rps), "rps_min": min(rps), "rps_max": max(rps),
            "p50": med([r["p50_ms"] for r in rs]),
            "p99": med([r["p99_ms"] for r in rs]),
            "responder": med([r["cpu_us"]["responder"] for r in rs]),
            "responder_sys": med([r.get("responder_sys_share", float("nan")) for r in rs]),
            "responder_cs": med([r.get("responder_cs", float("nan")) for r in rs]),
            "nginx": med([r["cpu_us"]["nginx"] for r in rs]),
            "redis": med([r["cpu_us"]["redis"] for r in rs]),
            "wrk": med([r["cpu_us"]["wrk"] for r in rs]),
            "cmds": med([r["redis_cmds"] for r in rs]),
            "fcgi_conns": med([r.get("fastcgi_connections", float("nan")) for r in rs]),
            "evalsha": med([r["evalsha"] for r in rs]),
            "non2xx": sum(r["non2xx"] for r in rs),
            "requests": sum(r["requests"] for r in rs),
            "socket_errors": sum(r["socket_errors"] for r in rs),
            "socket": {k: sum(r.get("socket", {}).get(k, 0) for r in rs) for k in ("connect", "read", "write", "timeout")},
            "nginx_errors": sum(r.get("nginx_errors", 0) for r in rs),
            "connections": rs[0].get("connections"),
            "expect": rs[0].get("expect", "2xx"),
            "calls_by_command": {},
        }
        cmds = {}
        for r in rs:
            for k in r.get("calls_by_command", {}):
                cmds.setdefault(k, []).append(r["calls_by_command"][k])
        out[name]["calls_by_command"] = {k: med(v + [0.0] * (len(rs) - len(v))) for k, v in cmds.items()}
    return out


def fmt(x, digits=1):
    if x != x:  # NaN
        return "n/a"
    return f"{x:,.{digits}f}"


def pct(x):
    return "n/a" if x != x else f"{x * 100:.0f}%"


def socket_detail(socket):
    return ", ".join(f"{k} {v}" for k, v in socket.items() if v) or "none"


def case_table(summary, descriptions):
    lines = [
        "| case | req/s (median) | req/s min–max | p50 ms | p99 ms | responder µs/req | responder sys share | responder ctx switches/req | FastCGI connections/req | nginx µs/req | redis µs/req | wrk µs/req | redis cmds/req | EVALSHA/req | answers |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, s in summary.items():
        if s["expect"] == "non2xx":
            answers = "all denied" if s["non2xx"] == s["requests"] else f"**{s['requests'] - s['non2xx']} allowed!**"
        else:
            answers = "all 2xx" if s["non2xx"] == 0 else f"**{s['non2xx']} non-2xx!**"
        if s["socket_errors"]:
            answers += f", **{s['socket_errors']} socket errors** ({socket_detail(s['socket'])})"
        if s.get("nginx_errors"):
            answers += f", **{s['nginx_errors']} error lines in nginx's log**"
        lines.append(
            f"| {name} | {fmt(s['rps'], 0)} | {fmt(s['rps_min'], 0)}–{fmt(s['rps_max'], 0)} "
            f"| {fmt(s['p50'], 2)} | {fmt(s['p99'], 2)} | {fmt(s['responder'])} "
            f"| {pct(s['responder_sys'])} "
            f"| {fmt(s['responder_cs'], 2)} | {fmt(s.get('fcgi_conns', float('nan')), 3)} | {fmt(s['nginx'])} | {fmt(s['redis'])} "
            f"| {fmt(s['wrk'])} | {fmt(s['cmds'], 3)} | {fmt(s['evalsha'], 3)} | {answers} |")
    lines.append("")
    lines += [f"- **{name}**: {descriptions[name]}" for name in summary if name in descriptions]
    return lines


def round_ratios(runs, num, den, key):
    a = {r["round"]: r[key] for r in runs if r["case"] == num}
    b = {r["round"]: r[key] for r in runs if r["case"] == den}
    return [a[k] / b[k] for k in a if k in b and b[k]]


def ratio_rows(runs, summary, ratios):
    lines = ["| ratio | value (of medians) | per-round range |", "|---|---:|---:|"]
    values = {}
    for label, num, den, key, skey in ratios:
        if num not in summary or den not in summary:
            continue
        v = summary[num][skey] / summary[den][skey] if summary[den][skey] else float("nan")
        values[label] = v
        per = round_ratios(runs, num, den, key)
        rng = f"{min(per):.3f}–{max(per):.3f}" if per else "n/a"
        lines.append(f"| {label} | {v:.3f} | {rng} |")
    return lines, values


def machine_lines(meta):
    m = meta["machine"]
    lines = [
        "## Machine",
        "",
        f"- cores (nproc): {m['nproc']}; CPU: {m['cpu']}",
        f"- kernel: {m['kernel']}",
        f"- {m['nginx']}; {m['redis']}",
        f"- {m['swift']}",
        f"- wrk: {m['wrk']}",
        f"- load average before / after: {m['load_before']} / {m.get('load_after', '?')}",
        f"- charge-gate: {m['binary']} (source tree {m['git']})",
    ]
    if m.get("cluster"):
        lines.append(f"- Redis Cluster (allow-cluster): {m['cluster']}")
    lines.append("")
    return lines


def header_lines(meta, title):
    p = meta["params"]
    return [
        f"# {title}",
        "",
        f"{meta['started']}",
        "",
        f"Command: `{meta['command']}`  ",
        f"Settings: DURATION={p['duration']} ROUNDS={p['rounds']} WARMUP={p['warmup']} "
        f"(wrk -t{p['threads']} -c{p['connections']} -d{p['duration']}s --latency; cases round-robin, "
        f"start rotated each round; a {p['warmup']} s warm-up before every run). "
        f"Responder: {p['workers']} worker threads, eventsMaxLen {p['events']}, log level {p['log_level']}.",
        "",
    ]


def report(argv):
    mode, meta_path, *run_paths = argv
    with open(meta_path) as f:
        meta = json.load(f)
    if mode == "main":
        return report_main(meta, run_paths[0], run_paths[1] if len(run_paths) > 1 else None)
    return report_scale(meta, run_paths)


MAIN_DESCRIPTIONS = {
    "static": "tiny static file, no gate",
    "limit_req": "same file behind `limit_req` (huge rate)",
    "floor": "auth_request, URI matches no route (no Redis)",
    "allow": "global pool that never empties",
    "deny": "empty pool (flood), 429; nginx's edge deny cache on (default)",
    "deny-noedge": "the same flood, nginx's cache off there: the responder's memory answers",
    "deny-many-uris": "the flood over 100,000 URIs: nginx's cache misses, the responder's memory answers",
    "per-subject": "per-subject pool, new X-Subject per request",
    "allow-proxied": "allow's pool, the answer from a stand-in app behind proxy_pass (kept connections)",
    "settled": "the same on a settled route (`settle: {amount: header}`): a hold, then nginx's settlement line",
    "settled-cluster": "settled on the Redis Cluster: the hold's claim in the request id's slot and the spend in the "
                       "pool's, then the line settled through the claim (two round trips each, one line at a time)",
    "floor-keepalive": "floor through the keepalive profile (kept FastCGI connections, no nginx deny cache)",
    "allow-keepalive": "allow through the keepalive profile",
    "per-subject-keepalive": "per-subject through the keepalive profile",
    "allow-cluster": "per-subject's pool and subjects on a Redis Cluster (its own nginx, edge profile, and responder): "
                     "each spend one EVALSHA on the primary of its subject's slot",
    "allow-cluster-global": "allow's global pool on the Redis Cluster: every spend in the pool's one slot, on one primary "
                            "(run only when ONLY names it)",
    "deny-keepalive": "the flood through the keepalive profile: the responder's memory answers every denial",
    "deny-many-uris-keepalive": "the flood over 100,000 URIs through the keepalive profile",
    "peer-static": "the peer's nginx (Lua module loaded): the same tiny file, no gate",
    "peer-allow": "the peer: ngx_lua in the access phase, one EVALSHA per request over a pooled cosocket",
    "peer-deny": "the peer's flood: an empty pool, every denial asks Redis (429)",
}

# The side-by-side table of issue 24: a row per case, the case's name in each stack (None: the
# stack has no such case).
PROFILE_ROWS = [
    ("static (no gate)", "static", None, "peer-static"),
    ("floor", "floor", "floor-keepalive", None),
    ("allow", "allow", "allow-keepalive", "peer-allow"),
    ("per-subject", "per-subject", "per-subject-keepalive", None),
    ("deny", "deny", "deny-keepalive", "peer-deny"),
    ("deny-many-uris", "deny-many-uris", "deny-many-uris-keepalive", None),
]


def run_clean(r):
    """A run without errors: every answer what the case expects (2xx, or for a denial case
    every one denied), no socket error or timeout in wrk, no error line in nginx's log."""
    if r.get("expect", "2xx") == "non2xx":
        answers_ok = r["non2xx"] == r["requests"]
    else:
        answers_ok = r["non2xx"] == 0
    return answers_ok and not r["socket_errors"] and not r.get("nginx_errors", 0)


def run_problems(r):
    out = []
    if r.get("expect", "2xx") == "non2xx":
        if r["non2xx"] != r["requests"]:
            out.append(f"{r['requests'] - r['non2xx']} allowed")
    elif r["non2xx"]:
        out.append(f"{r['non2xx']} non-2xx")
    sock = r.get("socket", {})
    if sock.get("timeout"):
        out.append(f"{sock['timeout']} timeouts")
    others = {k: v for k, v in sock.items() if v and k != "timeout"}
    if others:
        out.append("socket errors " + ", ".join(f"{k} {v}" for k, v in others.items()))
    elif r["socket_errors"] and not sock:
        out.append(f"{r['socket_errors']} socket errors")
    if r.get("nginx_errors"):
        out.append(f"{r['nginx_errors']} error lines in nginx's log")
    return out


def profile_lines(meta, runs, summary, high_runs):
    """Issue 24: the edge and keepalive profiles and the peer side by side, the target ratios
    from the same run, and the pass at HIGH_CONNECTIONS."""
    if not any(name in summary for row in PROFILE_ROWS for name in row[1:] if name) and not high_runs:
        return []
    p = meta["params"]

    def cell(name, key, digits):
        if not name:
            return "–"
        if name not in summary:
            return "(not run)"
        return fmt(summary[name][key], digits)

    lines = ["## Auth profiles and the peer, side by side (issue 24)", "",
             f"Medians over rounds at wrk -c{p['connections']}; every column from this run. **edge**: "
             "charge-gate-server.conf (nginx's deny cache, a FastCGI connection per auth subrequest); "
             "**keepalive**: charge-gate-server-keepalive.conf with `keepalive 32;` in the upstream "
             "(kept FastCGI connections); **peer**: ../shared/peer/run-peer.sh (ngx_lua + Redis per "
             "request, the same token bucket, no usage event), its own nginx and Redis.", "",
             "| case | edge req/s | edge p99 ms | keepalive req/s | keepalive p99 ms | peer req/s | peer p99 ms |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for label, edge, keep, peer in PROFILE_ROWS:
        lines.append(f"| {label} | {cell(edge, 'rps', 0)} | {cell(edge, 'p99', 2)} | {cell(keep, 'rps', 0)} "
                     f"| {cell(keep, 'p99', 2)} | {cell(peer, 'rps', 0)} | {cell(peer, 'p99', 2)} |")
    lines += ["", "The peer has no floor (no route that skips Redis), no per-subject pool and no deny cache: "
              "its denial does not depend on the URI, so it has no deny-many-uris case either.", ""]

    def mark(ok):
        return "met" if ok else "**not met**"

    targets = [
        ("keepalive floor ≥ 1.4 × edge floor", "floor-keepalive", "floor", 1.4),
        ("edge allow ≥ 0.8 × peer allow", "allow", "peer-allow", 0.8),
        ("keepalive allow ≥ 0.8 × peer allow", "allow-keepalive", "peer-allow", 0.8),
        ("edge deny ≥ 1.0 × peer deny", "deny", "peer-deny", 1.0),
        ("keepalive deny ≥ 1.0 × peer deny", "deny-keepalive", "peer-deny", 1.0),
    ]
    rows = []
    met = {}
    for label, num, den, bar in targets:
        if num not in summary or den not in summary or not summary[den]["rps"]:
            rows.append(f"| {label} | (not run) | | |")
            continue
        v = summary[num]["rps"] / summary[den]["rps"]
        per = round_ratios(runs, num, den, "rps")
        rng = f"{min(per):.3f}–{max(per):.3f}" if per else "n/a"
        met[num] = v >= bar
        rows.append(f"| {label} | {v:.3f} ({fmt(summary[num]['rps'], 0)} / {fmt(summary[den]['rps'], 0)}) | {rng} | {mark(v >= bar)} |")
    if high_runs is not None:
        bad = [r for r in high_runs if not run_clean(r)]
        hc = sorted({r.get("connections") for r in high_runs if r.get("connections")})
        c = "/".join(str(x) for x in hc) or "?"
        if high_runs:
            detail = "every case clean" if not bad else "; ".join(
                f"{r['case']} (round {r['round']}): {', '.join(run_problems(r))}" for r in bad)
            rows.append(f"| no timeouts or errors under wrk -c{c} | {len(high_runs) - len(bad)} of {len(high_runs)} runs clean: {detail} | | {mark(not bad)} |")
        else:
            rows.append(f"| no timeouts or errors under wrk -c{c} | (not run) | | |")
    lines += ["### Targets (issue 24; informational)", "",
              "| target | measured (ratio of medians) | per-round range | |", "|---|---|---:|---|"] + rows + [""]
    verdicts = [f"- {profile} against the peer: allow target {'met' if met[allow] else 'not met'}, "
                f"deny target {'met' if met[deny] else 'not met'}."
                for profile, allow, deny in (("edge", "allow", "deny"), ("keepalive", "allow-keepalive", "deny-keepalive"))
                if allow in met and deny in met]
    if verdicts:
        lines += verdicts + [""]

    if high_runs is not None:
        lines += high_lines(meta, high_runs)
    return lines


def high_lines(meta, high_runs):
    p = meta["params"]
    hc = p.get("high_connections", "?")
    lines = [f"### Under wrk -c{hc} ({p.get('high_duration', '?')} s per case, {p.get('high_rounds', 1)} round(s), "
             f"a {p['warmup']} s warm-up before each)", ""]
    if not high_runs:
        return lines + ["Not run (none of its cases selected, or HIGH_CONNECTIONS=0).", ""]
    lines += ["| round | case | req/s | p50 ms | p99 ms | requests | FastCGI connections/req | non-2xx | socket errors: connect / read / write / timeout | nginx error-log lines | |",
              "|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---|"]
    for r in high_runs:
        sock = r.get("socket", {})
        s = " / ".join(str(sock.get(k, 0)) for k in ("connect", "read", "write", "timeout"))
        verdict = "clean" if run_clean(r) else "**" + ", ".join(run_problems(r)) + "**"
        lines.append(f"| {r['round']} | {r['case']} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['requests']} "
                     f"| {fmt(r.get('fastcgi_connections', float('nan')), 3)} | {r['non2xx']} | {s} | {r.get('nginx_errors', 0)} | {verdict} |")
    bad = sorted({r["case"] for r in high_runs if not run_clean(r)})
    lines += [""]
    if bad:
        lines.append(f"**Errors or timeouts at -c{hc} in {len(bad)} case(s): {', '.join(bad)}.**")
    else:
        lines.append(f"No case had errors or timeouts at -c{hc}.")
    lines += ["(A denial case's answers are all expected to be non-2xx: 2xx answers are its errors; a 502, 503 or "
              "504 among its 429s shows as nginx's error-log lines, which every case counts.)", ""]
    return lines


def report_main(meta, run_path, high_path=None):
    with open(run_path) as f:
        runs = json.load(f)["runs"]
    high_runs = None
    if high_path:
        with open(high_path) as f:
            high_runs = json.load(f)["runs"]
    summary = summarize(runs)
    lines = header_lines(meta, "ChargeGate benchmark")
    lines += profile_lines(meta, runs, summary, high_runs)
    lines += ["## Cases (medians over rounds; CPU is per request)", ""]
    lines += case_table(summary, MAIN_DESCRIPTIONS)
    lines += [""]
    ratios = [
        ("allow / floor (req/s)", "allow", "floor", "rps", "rps"),
        ("deny / floor (req/s)", "deny", "floor", "rps", "rps"),
        ("deny / static (req/s)", "deny", "static", "rps", "rps"),
        ("deny-noedge / static (req/s)", "deny-noedge", "static", "rps", "rps"),
        ("deny-many-uris / floor (req/s)", "deny-many-uris", "floor", "rps", "rps"),
        ("per-subject / floor (req/s)", "per-subject", "floor", "rps", "rps"),
        ("settled / allow-proxied (req/s)", "settled", "allow-proxied", "rps", "rps"),
        ("settled-cluster / settled (req/s)", "settled-cluster", "settled", "rps", "rps"),
        ("floor / static (req/s)", "floor", "static", "rps", "rps"),
        ("limit_req / static (req/s)", "limit_req", "static", "rps", "rps"),
        ("p99(allow) / p99(floor)", "allow", "floor", "p99_ms", "p99"),
        ("p99(deny) / p99(floor)", "deny", "floor", "p99_ms", "p99"),
        ("p99(per-subject) / p99(floor)", "per-subject", "floor", "p99_ms", "p99"),
        ("allow-cluster / per-subject (req/s): a cluster against one node", "allow-cluster", "per-subject", "rps", "rps"),
        ("allow-cluster / allow (req/s)", "allow-cluster", "allow", "rps", "rps"),
        ("allow-cluster-global / allow (req/s)", "allow-cluster-global", "allow", "rps", "rps"),
        ("p99(allow-cluster) / p99(per-subject)", "allow-cluster", "per-subject", "p99_ms", "p99"),
        ("floor-keepalive / floor (req/s)", "floor-keepalive", "floor", "rps", "rps"),
        ("allow-keepalive / floor-keepalive (req/s)", "allow-keepalive", "floor-keepalive", "rps", "rps"),
        ("per-subject-keepalive / floor-keepalive (req/s)", "per-subject-keepalive", "floor-keepalive", "rps", "rps"),
        ("deny-keepalive / floor-keepalive (req/s)", "deny-keepalive", "floor-keepalive", "rps", "rps"),
        ("deny-many-uris-keepalive / floor-keepalive (req/s)", "deny-many-uris-keepalive", "floor-keepalive", "rps", "rps"),
        ("allow-keepalive / allow (req/s)", "allow-keepalive", "allow", "rps", "rps"),
        ("deny-keepalive / deny (req/s)", "deny-keepalive", "deny", "rps", "rps"),
        ("p99(allow-keepalive) / p99(floor-keepalive)", "allow-keepalive", "floor-keepalive", "p99_ms", "p99"),
        ("peer-allow / peer-static (req/s)", "peer-allow", "peer-static", "rps", "rps"),
        ("peer-deny / peer-static (req/s)", "peer-deny", "peer-static", "rps", "rps"),
        ("static / peer-static (req/s): the two nginx setups", "static", "peer-static", "rps", "rps"),
    ]
    rows, values = ratio_rows(runs, summary, ratios)
    lines += ["## Ratios (same run)", ""] + rows + [""]

    def mark(ok):
        return "PASS" if ok else "MISS"

    t = []
    if "allow / floor (req/s)" in values:
        v = values["allow / floor (req/s)"]
        t.append(f"| allow ≥ 0.85 × floor | {v:.3f} × floor | {mark(v >= 0.85)} |")
    if "deny / floor (req/s)" in values:
        v = values["deny / floor (req/s)"]
        t.append(f"| deny ≥ 0.95 × floor | {v:.3f} × floor | {mark(v >= 0.95)} |")
    if "deny / static (req/s)" in values:
        v = values["deny / static (req/s)"]
        t.append(f"| deny (edge cache on) ≥ 0.6 × static | {v:.3f} × static | {mark(v >= 0.6)} |")
    if "deny" in summary:
        c = summary["deny"]["cmds"]
        t.append(f"| Redis commands per denied request ≤ 0.01 | {c:.3f} (EVALSHA {summary['deny']['evalsha']:.3f}) | {mark(c <= 0.01)} |")
    for name in ("allow", "deny", "per-subject"):
        if name in summary:
            c = summary[name]["responder"]
            t.append(f"| responder CPU per request ≤ 12 µs ({name}) | {c:.1f} µs | {mark(c <= 12)} |")
    for name in ("allow", "deny"):
        key = f"p99({name}) / p99(floor)"
        if key in values:
            v = values[key]
            t.append(f"| p99({name}) at {meta['params']['connections']} connections ≤ 2 × p99(floor) | {v:.2f} × ({fmt(summary[name]['p99'], 2)} vs {fmt(summary['floor']['p99'], 2)} ms) | {mark(v <= 2)} |")
    lines += ["## Targets (issues 5 and 16; informational)", "", "| target | measured | |", "|---|---|---|"] + t + [""]

    lines += ceiling_lines(summary, int(meta["machine"].get("nproc", "0") or 0))
    lines += spend_cpu_lines(runs, summary)

    lines += ["## Redis commands per request, by command (medians)", "",
              "| case | commands (inside the script included) |", "|---|---|"]
    for name, s in summary.items():
        parts = ", ".join(f"{k} {v:.3f}" for k, v in s["calls_by_command"].items() if v >= 0.0005) or "none"
        lines.append(f"| {name} | {parts} |")
    lines += [""]

    lines += ["## Every run", "", "| round | case | req/s | p50 ms | p99 ms | responder µs | nginx µs | redis µs | wrk µs | redis cmds/req | non-2xx | errors |",
              "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in runs:
        c = r["cpu_us"]
        lines.append(f"| {r['round']} | {r['case']} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {fmt(c['responder'])} "
                     f"| {c['nginx']:.1f} | {c['redis']:.1f} | {c['wrk']:.1f} | {r['redis_cmds']:.3f} | {r['non2xx']} "
                     f"| {', '.join(run_problems(r)) or '–'} |")
    lines += [""]
    lines += machine_lines(meta)
    lines += NOTES_MAIN
    print("\n".join(lines))


def ceiling_lines(summary, cores):
    """What the machine allows. nginx (one worker) and Redis are single-threaded, so each can
    serve at most 1 s / (its CPU per request); and all processes share the cores, so together
    they serve at most cores x 1 s / (the CPU all of them spend per request). The lowest of
    these bounds predicts req/s; the model is checked against the measured ratios, then asked
    what a cheaper responder would give."""
    if not all(k in summary for k in ("floor", "allow")) or cores < 1:
        return []

    def bound(name, responder=None):
        s = summary[name]
        r = s["responder"] if responder is None else responder
        limits = [cores * 1e6 / (r + s["nginx"] + s["redis"] + s["wrk"])]
        for single in ("nginx", "redis"):
            if s[single] >= 1:
                limits.append(1e6 / s[single])
        return min(limits)

    lines = ["## What the machine allows (same run)", "",
             "nginx (one worker) and Redis each run on one core at most; together with the responder",
             f"and wrk they share {cores}. So req/s is at most the lowest of 1 s / nginx's CPU per request,",
             f"1 s / Redis's, and {cores} s / the CPU all processes spend per request. The prediction from",
             "this run's CPU columns is checked against the measured ratio; then the same model with a",
             "responder that costs nothing, and with one at half its measured CPU.", "",
             "| ratio | measured | predicted | free responder | responder at half its CPU |",
             "|---|---:|---:|---:|---:|"]
    f = summary["floor"]
    for name in ("allow", "per-subject", "deny"):
        if name not in summary or not f["rps"]:
            continue
        measured = summary[name]["rps"] / f["rps"]
        predicted = bound(name) / bound("floor")
        free = bound(name, 0) / bound("floor", 0)
        half = bound(name, summary[name]["responder"] / 2) / bound("floor", f["responder"] / 2)
        lines.append(f"| {name} / floor | {measured:.3f} | {predicted:.3f} | {free:.3f} | {half:.3f} |")
    a = summary["allow"]
    rest = a["nginx"] + a["redis"] + a["wrk"]
    needed = cores * 1e6 / (0.85 * bound("floor")) - rest
    lines += ["", f"For allow ≥ 0.85 × floor (the floor at its bound), with this run's nginx, Redis and wrk, the responder may spend "
              f"at most {needed:.1f} µs per allowed request (measured: {a['responder']:.1f} µs). "
              f"Responder CPU against nginx's per allowed request, a share comparable across machines: "
              f"{a['responder']:.1f} / {a['nginx']:.1f} µs = {a['responder'] / a['nginx']:.2f} "
              "(the FIELD-NOTES prototype: ~24 / ~30 µs = 0.80).", ""]
    return lines


def spend_cpu_lines(runs, summary, projections=(1, 3, 6)):
    """Redis CPU per spend, node by node: for each case that spends (an EVALSHA per request, at
    least half of the time), each Redis node's share of the EVALSHAs, its CPU per EVALSHA
    (used_cpu_sys + used_cpu_user, before and after the run) and the µs inside the script
    (commandstats usec / calls); then the ceiling those figures give: a node, single-threaded,
    serves at most 1 s / (its CPU per spend) spends a second, so a cluster whose node i takes
    share_i of the spends serves at most min_i 1 s / (µs_i × share_i); with N primaries, one
    core each, an even spread and the measured CPU per spend: N × 1 s / µs."""
    # The allowed paths, one EVALSHA per request: denials (none, or the peer's check) and
    # settled (its settlement scripts, batched: ~1.09 per request) are left out.
    spending = [name for name, s in summary.items() if s["expect"] != "non2xx" and 0.95 <= s["evalsha"] <= 1.05]
    if not spending:
        return []
    lines = ["## Redis CPU per spend, node by node (medians over rounds)", "",
             "Each allowed request is one spend: one EVALSHA on the node that owns its keys' slot. Per node: its share "
             "of the run's EVALSHAs, its CPU (INFO cpu: used_cpu_sys + used_cpu_user, before and after the run) "
             "per EVALSHA it ran, the part of that inside the script (INFO commandstats: EVALSHA's usec / calls; the "
             "rest is reading, parsing, replying, the event loop and the kernel), and how much of one core it used. "
             "A node runs on one core at most, so it can serve 1 s / (its CPU per spend) spends a second.", "",
             "| case | node | share of spends | EVALSHA per request | spends/s on it | Redis CPU µs per spend | inside EVALSHA µs | core used | one core's ceiling, spends/s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    ceilings = []
    for name in spending:
        rs = [r for r in runs if r["case"] == name and r.get("redis_nodes")]
        if not rs:
            continue
        names = [n["name"] for n in rs[0]["redis_nodes"]]
        per_node = {}
        for node in names:
            share, us, inside, core, per_req, rate = [], [], [], [], [], []
            for r in rs:
                total = sum(n["evalsha"] for n in r["redis_nodes"])
                n = next((x for x in r["redis_nodes"] if x["name"] == node), None)
                if n is None or not total:
                    continue
                share.append(n["evalsha"] / total)
                per_req.append(n["evalsha"] / max(r["requests"], 1))
                core.append(n["cpu_s"] / r["wall_seconds"] if r.get("wall_seconds") else float("nan"))
                rate.append(n["evalsha"] / r["wall_seconds"] if r.get("wall_seconds") else float("nan"))
                if n["evalsha"]:
                    us.append(n["cpu_s"] * 1e6 / n["evalsha"])
                    inside.append(n["evalsha_usec"] / n["evalsha"])
            per_node[node] = {"share": med(share), "us": med(us), "inside": med(inside), "core": med(core), "per_req": med(per_req),
                              "rate": med(rate)}
        for node in names:
            v = per_node[node]
            ceiling = 1e6 / v["us"] if v["us"] == v["us"] and v["us"] > 0 else float("nan")
            lines.append(f"| {name} | {node} | {pct(v['share'])} | {fmt(v['per_req'], 3)} | {fmt(v['rate'], 0)} | {fmt(v['us'])} | {fmt(v['inside'])} "
                         f"| {pct(v['core'])} | {fmt(ceiling, 0)} |")
        # The whole: every node's CPU over every node's EVALSHAs, per round, then the median.
        whole = med([sum(n["cpu_s"] for n in r["redis_nodes"]) * 1e6 / sum(n["evalsha"] for n in r["redis_nodes"])
                     for r in rs if sum(n["evalsha"] for n in r["redis_nodes"])])
        measured = min((1e6 / (v["us"] * v["share"]) for v in per_node.values()
                        if v["us"] == v["us"] and v["share"] == v["share"] and v["us"] > 0 and v["share"] > 0),
                       default=float("nan"))
        ceilings.append((name, len(names), whole, measured))
    lines += ["", "### What those figures allow (on paper)", "",
              "The ceiling Redis alone puts on spends, from the CPU per spend measured above: with the spread measured, "
              "min over nodes of 1 s / (µs per spend × share); with N primaries, each on a core of its own and "
              "the slots (so the spends) spread evenly, N × 1 s / µs per spend (all nodes together). On this "
              "machine every process shares the same cores, so none of these is reached here; the figures "
              "say how the store scales, not what this box does. A node's CPU per spend grows as its spend rate "
              "falls (fewer spends per wake-up, colder caches on shared cores: see spends/s above and "
              "BENCHMARKS.md), so a figure from a lightly loaded node gives a low ceiling.", "",
              "| case | Redis nodes | Redis CPU µs per spend (all nodes) | ceiling with the measured spread, spends/s | "
              + " | ".join(f"N = {n}: N × 1e6 / µs" for n in projections) + " |",
              "|---|---:|---:|---:|" + "---:|" * len(projections)]
    for name, count, whole, measured in ceilings:
        lines.append(f"| {name} | {count} | {fmt(whole)} | {fmt(measured, 0)} | "
                     + " | ".join(fmt(n * 1e6 / whole, 0) if whole == whole and whole > 0 else "n/a" for n in projections) + " |")
    lines += [""]
    return lines


NOTES_MAIN = [
    "## Notes",
    "",
    "- Everything shares the same cores: nginx, the responder, Redis and wrk. CPU columns are",
    "  process CPU time (utime+stime; 10 ms ticks for nginx and the responder) divided by the",
    "  requests wrk completed; \"redis cmds/req\" counts INFO commandstats calls, which include",
    "  the commands the bucket script runs inside Redis (TIME, GET, SET, XADD), not only EVALSHA.",
    "- \"responder sys share\": the part of the responder's CPU spent in the kernel (syscalls,",
    "  scheduling); \"ctx switches/req\": voluntary + involuntary, summed over its threads.",
    "- \"FastCGI connections/req\": connections the responder accepted per request (its",
    "  charge_gate_fastcgi_connections_total, scraped through the edge nginx before and after",
    "  each run): 1 when each auth subrequest opens its own, near 0 when nginx keeps them; n/a",
    "  for the peer and for a responder without the metric.",
    "- per-subject sends its header from a wrk Lua script, so wrk spends more CPU per request",
    "  there than in the other cases (see the wrk column).",
    "- The peer (peer-* cases) is ../shared/peer/run-peer.sh: its own nginx (1 worker, access_log",
    "  off, the Lua module) and its own Redis, the same bucket script run with ngx_lua from the",
    "  access phase. Its columns are its nginx worker and its Redis; it has no responder. Its allow",
    "  runs TIME, GET and SET in the script (4 commands), no usage event; ChargeGate's also XADDs.",
    "  Its deny asks Redis every time (no deny cache).",
    "- keepalive cases: a second nginx, rendered from the same template with its own directory and",
    "  port, differing from the first only in the server snippet (charge-gate-server-keepalive.conf)",
    "  and `keepalive 32;` in `upstream charge_gate` (bench/run checks the two configs line by",
    "  line); the same responder and Redis.",
    "- FIELD-NOTES reference for the FastCGI prototype on this machine kind: static ~112k,",
    "  floor ~39k, allow ~23.5k req/s (±15% between runs).",
    "",
]


SCALE_DESCRIPTIONS = {
    "floor@1-route": "floor URI, config with 1 route / 1 pool",
    "floor@5000-routes": "floor URI, config with 5,000 routes / 1,000 pools",
    "floor": "floor URI (no Redis), reference for drift",
    "subjects-1k": "per-subject allow over 1,000 subjects whose keys exist",
    "subjects-1M": "per-subject allow over 1,000,000 subjects whose keys exist",
}


def report_scale(meta, run_paths):
    phases = []
    for p in run_paths:
        with open(p) as f:
            phases.append(json.load(f))
    lines = header_lines(meta, "ChargeGate benchmark: scale")
    titles = {
        "routes": "A. Routing cost: 5,000 routes vs 1 route (the responder is reloaded with SIGHUP between runs)",
        "keys-small": "B1. Per-subject allow, Redis holding ~1,000 subject keys",
        "keys-large": "B2. Per-subject allow, Redis holding 1,000,000 subject keys (prefilled)",
    }
    summaries = {}
    all_ratio_rows = ["| ratio | value (of medians) | per-round range |", "|---|---:|---:|"]
    for ph in phases:
        label = ph["spec"]["label"]
        runs = ph["runs"]
        s = summarize(runs)
        summaries[label] = (s, runs)
        lines += [f"## {titles.get(label, label)}", ""]
        if ph["spec"].get("note"):
            lines += [ph["spec"]["note"], ""]
        lines += case_table(s, SCALE_DESCRIPTIONS) + [""]
    ratio_specs = {
        "routes": [("floor@5000-routes / floor@1-route (req/s)", "floor@5000-routes", "floor@1-route", "rps", "rps"),
                   ("p99 floor@5000-routes / floor@1-route", "floor@5000-routes", "floor@1-route", "p99_ms", "p99")],
        "keys-small": [("subjects-1k / floor (req/s), ~1k keys in Redis", "subjects-1k", "floor", "rps", "rps")],
        "keys-large": [("subjects-1k / floor (req/s), 1M keys in Redis", "subjects-1k", "floor", "rps", "rps"),
                       ("subjects-1M / floor (req/s), 1M keys in Redis", "subjects-1M", "floor", "rps", "rps"),
                       ("subjects-1M / subjects-1k (req/s), 1M keys in Redis", "subjects-1M", "subjects-1k", "rps", "rps")],
    }
    values = {}
    for label, (s, runs) in summaries.items():
        rows, v = ratio_rows(runs, s, ratio_specs.get(label, []))
        all_ratio_rows += rows[2:]
        values.update(v)
    a = values.get("subjects-1k / floor (req/s), 1M keys in Redis")
    b = values.get("subjects-1k / floor (req/s), ~1k keys in Redis")
    if a and b:
        all_ratio_rows.append(f"| keyspace effect: (subjects-1k/floor with 1M keys) / (with ~1k keys) | {a / b:.3f} | (phases B2 vs B1) |")
    lines += ["## Ratios", ""] + all_ratio_rows + [""]
    lines += machine_lines(meta)
    lines += [
        "## Notes",
        "",
        "- A: both configs run alternately in the same nginx and responder: each run that needs",
        "  the other config copies it over the served file and sends SIGHUP (the responder logs",
        "  'config reloaded: N pools, M routes', which the script waits for). Half of the 5,000",
        "  routes are /floor/x<i>, siblings of the floor URI /floor/t.txt, so its lookup walks",
        "  into a node with 2,500 children and finds nothing; the other half are /svc<j>/op<i>.",
        "- B: keys are `charge:scale-subject:u<i>` = `{\"current\":999999990,\"lastUpdatedAt\":NOW}`",
        "  with PX 10 h (what the script itself would write for a pool of 10^9 with a 1 h",
        "  interval), loaded with redis-cli --pipe. subjects-1k cycles u0..u999, subjects-1M",
        "  u0..u999999, so every request reads a key that exists and rewrites it (GET hit + SET PX).",
        "",
    ]
    print("\n".join(lines))


# The store's call tree on the allowed path, single node against cluster: rows of (what, the
# function on one Redis, the function on a cluster), names as `swift demangle --simplified`
# prints them ("specialized " dropped); None: the store has no such step.
CLUSTER_ROWS = [
    ("the store's spend, all of it (`charge`)", "RedisStore.charge(_:)", "ClusterStore.charge(_:)"),
    ("  the slot of each key, the steps by slot (`ClusterSpendPlan.init`)", None, "ClusterSpendPlan.init(_:slot:)"),
    ("  the event stream and hold placed in the slot (`ClusterStore.placed`: the slot's tag in the key)", None,
     "ClusterStore.placed(_:slot:)"),
    ("  the script's command built, sent and its reply read (`runScript` / `run`)", "RedisStore.runScript(_:_:)",
     "ClusterStore.run(sha:source:slot:_:)"),
    ("    the round trip (`RedisConnection.command` / `ClusterConnection.route`: the routing state machine, "
     "the node's connection looked up, `attempt`)", "RedisConnection.command(_:)", "ClusterConnection.route(_:slot:startMs:)"),
    ("      of which the node's connection looked up (`ClusterConnection.connection(to:)`)", None,
     "ClusterConnection.connection(to:)"),
    ("  the rest of `charge` (the reply read into a result, the request's copies)", "=rest", "=rest"),
    ("the route's items and their keys (`Gate.items`: a subject's keys carry its hash tag on a cluster)",
     "Gate.items(_:subject:plan:)", "Gate.items(_:subject:plan:)"),
]


def callgrind_functions(path, inclusive):
    """Instructions per function (demangled, simplified) of a callgrind output file, from
    callgrind_annotate; inclusive or self."""
    text = subprocess.run(["callgrind_annotate", "--threshold=100", f"--inclusive={'yes' if inclusive else 'no'}", path],
                          capture_output=True, text=True, check=True).stdout
    raw = {}
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$", line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        mm = re.match(r"(.*?):(.*) \[(.*)\]$", m.group(2))
        name = mm.group(2) if mm else m.group(2)
        raw[name] = raw.get(name, 0) + int(m.group(1).replace(",", ""))
    names = list(raw)
    try:
        shown = subprocess.run(["swift", "demangle", "--simplified"], input="\n".join(names), capture_output=True,
                               text=True, check=True).stdout.split("\n")[:len(names)]
    except (OSError, subprocess.CalledProcessError):
        shown = names
    out = {}
    for name, text in zip(names, shown):
        text = text.removeprefix("specialized ")
        out[text] = out.get(text, 0) + raw[name]
    return out


def callgrind_compare(argv):
    """Where a cluster case's instructions differ from its single-node twin's: the store's call
    tree (CLUSTER_ROWS, inclusive, per request) and the functions whose own instructions per
    request moved most. argv: BASE_NAME BASE_FILE BASE_REQUESTS CASE_NAME CASE_FILE CASE_REQUESTS."""
    base_name, base_file, base_n, case_name, case_file, case_n = argv
    base_n, case_n = int(base_n), int(case_n)
    bi, ci = callgrind_functions(base_file, True), callgrind_functions(case_file, True)
    lines = [f"| per request | {base_name} (one Redis) | {case_name} (cluster) | difference |", "|---|---:|---:|---:|"]

    def per(table, name, n):
        return table.get(name, 0) / n if name else 0.0

    rest = {}
    for which, table, n, col in (("base", bi, base_n, 1), ("case", ci, case_n, 2)):
        whole = per(table, CLUSTER_ROWS[0][col], n)
        parts = [r[col] for r in CLUSTER_ROWS[1:] if r[col] and not r[col].startswith("=") and not r[0].startswith("    ")
                 and r[0].startswith("  ")]
        rest[which] = whole - sum(per(table, p, n) for p in parts)
    for label, b, c in CLUSTER_ROWS:
        vb = rest["base"] if b == "=rest" else per(bi, b, base_n)
        vc = rest["case"] if c == "=rest" else per(ci, c, case_n)
        cell_b = f"{vb:,.0f}" if b else "–"
        lines.append(f"| {label} | {cell_b} | {vc:,.0f} | {vc - vb:+,.0f} |")
    bs, cs = callgrind_functions(base_file, False), callgrind_functions(case_file, False)
    # Left out: the worker thread's own frames, which callgrind_annotate charges with the whole
    # collected count (the loop is what --toggle-collect names).
    whole_base = max(bs.values(), default=0) / base_n
    whole_case = max(cs.values(), default=0) / case_n
    moved = sorted(((cs.get(k, 0) / case_n - bs.get(k, 0) / base_n, k) for k in set(bs) | set(cs)
                    if bs.get(k, 0) / base_n < 0.5 * whole_base and cs.get(k, 0) / case_n < 0.5 * whole_case),
                   key=lambda x: -abs(x[0]))
    lines += ["", f"The functions whose own instructions per request moved most ({case_name} against {base_name}):", "",
              "| function | " + base_name + " | " + case_name + " | difference |", "|---|---:|---:|---:|"]
    for delta, k in moved[:12]:
        shown = k if len(k) <= 90 else k[:87] + "..."
        lines.append(f"| `{shown}` | {bs.get(k, 0) / base_n:,.0f} | {cs.get(k, 0) / case_n:,.0f} | {delta:+,.0f} |")
    print("\n".join(lines))


def on_term(signum, frame):
    raise KeyboardInterrupt


def main():
    signal.signal(signal.SIGTERM, on_term)
    if len(sys.argv) < 2:
        die("usage: benchlib.py freeport|many-routes|prefill|keepalive-conf|measure|report ...")
    cmd, argv = sys.argv[1], sys.argv[2:]
    try:
        if cmd == "freeport":
            freeport()
        elif cmd == "many-routes":
            many_routes(argv)
        elif cmd == "prefill":
            prefill(argv)
        elif cmd == "keepalive-conf":
            keepalive_conf(argv)
        elif cmd == "measure":
            measure(argv)
        elif cmd == "callgrind-compare":
            callgrind_compare(argv)
        elif cmd == "report":
            report(argv)
        else:
            die(f"unknown command {cmd}")
    except (RuntimeError, OSError, ValueError, KeyError, subprocess.CalledProcessError) as e:
        die(f"{cmd}: {e}")
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
