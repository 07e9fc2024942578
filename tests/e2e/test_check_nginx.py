"""charge-gate check-nginx against real nginx (issue 12).

The fixtures of the unit tests (Tests/ChargeGateNginxTests/Fixtures) are saved `nginx -T`
outputs: a shared main file, each fixture's own files, the project's snippets. Here each one
becomes a real nginx in the stack's temp dir (paths and ports mapped, line numbers kept), with
the real responder and Redis of the harness behind it. Then:

- for each trap, `check-nginx --nginx-conf` (which runs `nginx -T` itself) says NOT GATED, and
  the request it names, sent through that nginx, is served without a charge (by the app, or by
  nginx's own answer where the trap is a `return`);
- for each good config, `check-nginx` says gated, and the request it tried is charged.

The pairing is the point: the checker is right only where nginx agrees with it. The location
search is also compared URI by URI with nginx (Fixtures/matching.conf), and the error paths
(exit 2) and deploy/local-stack's table are checked.
"""

from __future__ import annotations

import fnmatch
import grp
import json
import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import (BIN, LOCAL_STACK, NGINX, ROOT, SERVICE_UNAVAILABLE, Nginx, Stack, assert_out_of_charge, free_port,
                     http_request, raw_request, wait_until)

FIXTURES = ROOT / "Tests" / "ChargeGateNginxTests" / "Fixtures"
ROUTES_YAML = (FIXTURES / "charge-gate.yaml").read_text()
MARKER = "# configuration file "
INCLUDE = re.compile(r"^\s*include\s+(\S+);")
POOL = {"/api/generate": "generate", "/api/describe": "describe"}
MAX_CHARGES = {"generate": 5, "describe": 20}


def split_dump(text: str, included: tuple[str, ...] = ("/etc/nginx/sites/*.conf",)) -> list[tuple[str, str]]:
    """The files of a fixture (a saved `nginx -T` text, as the unit tests' NginxFixtures read
    it): text before the first marker is ignored, the newline nginx adds after each file is
    dropped, and a marker line counts only when its path is the first or one an `include` seen
    so far names (`included`: the shared main file's), as nginx reads only those; any other is a
    comment inside the file."""
    patterns = list(included)
    files: list[tuple[str, list[str]]] = []
    for line in text.split("\n"):
        bare = line[:-1] if line.endswith("\r") else line
        if bare.startswith(MARKER) and bare.endswith(":") and len(bare) > len(MARKER) + 1:
            path = bare[len(MARKER):-1]
            if not files or any(fnmatch.fnmatchcase(path, p) for p in patterns):
                files.append((path, []))
                continue
        if files:
            files[-1][1].append(line)
            include = INCLUDE.match(line)
            if include:
                name = include.group(1).strip("\"'")
                patterns.append(name if name.startswith("/") else "/etc/nginx/" + name)
    out = []
    for path, lines in files:
        body = "\n".join(lines)
        out.append((path, body[:-1] if body.endswith("\n") else body))
    return out


class FixtureNginx(Nginx):
    """An nginx whose config is a fixture: /etc/nginx/ -> DIR/etc/nginx/, /srv/gate/ -> DIR/,
    the snippets -> the project's nginx/, ports 8080/8081 -> free ports. Every replacement
    stays within its line, so findings keep the fixture's line numbers."""

    def __init__(self, dir: Path, port: int, fixture: str, text: str | None = None):
        super().__init__(dir, port, "")
        self.fixture = fixture
        self.text = text
        self.port2 = free_port()
        self.conf = dir / "etc" / "nginx" / "nginx.conf"

    def map(self, text: str) -> str:
        return (text.replace("/etc/nginx/", f"{self.dir}/etc/nginx/")
                .replace("/srv/gate/", f"{self.dir}/")
                .replace("/usr/local/share/charge-gate/nginx/", f"{ROOT}/nginx/")
                .replace("127.0.0.1:8080", f"127.0.0.1:{self.port}")
                .replace("127.0.0.1:8081", f"127.0.0.1:{self.port2}"))

    def unmap(self, text: str) -> str:
        return (text.replace(f"{self.dir}/etc/nginx/", "/etc/nginx/")
                .replace(f"{ROOT}/nginx/", "/usr/local/share/charge-gate/nginx/")
                .replace(f"{self.dir}/", "/srv/gate/")
                .replace(f"127.0.0.1:{self.port2}", "127.0.0.1:8081")
                .replace(f"127.0.0.1:{self.port}", "127.0.0.1:8080"))

    def write(self):
        (self.dir / "tmp").mkdir(exist_ok=True)
        main = (FIXTURES / "nginx.conf").read_text()
        if os.geteuid() == 0:  # as deploy/render-nginx-conf does: workers must reach DIR's sockets
            lines = main.split("\n")
            lines[0] = f"user {pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name};"
            main = "\n".join(lines)
        for path, text in [("/etc/nginx/nginx.conf", main)] + split_dump(self.text or (FIXTURES / self.fixture).read_text()):
            target = Path(self.map(path))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(self.map(text))

    def start(self):
        self.write()
        r = subprocess.run([NGINX, "-p", f"{self.dir}/", "-c", str(self.conf), "-e", str(self.dir / "error.log")],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
        if r.returncode != 0:
            raise AssertionError(f"nginx failed to start with {self.fixture}: {r.stderr.strip()}")
        wait_until(lambda: self.pid() is not None, 5, what="nginx pid file")


def fixture_stack(make_stack, fixture: str):
    stack = make_stack(ROUTES_YAML, start=False)
    stack.nginx = FixtureNginx(stack.dir, stack.port, fixture)
    return stack.start()


def check_nginx(stack, *extra: str, fmt: str = "json") -> tuple[subprocess.CompletedProcess, dict | None]:
    r = subprocess.run([str(BIN), "check-nginx", "--config", str(stack.config), "--nginx-conf", str(stack.nginx.conf),
                        "--format", fmt, *extra], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    report = json.loads(r.stdout) if fmt == "json" and r.stdout.strip() else None
    return r, report


def line_for(report: dict, route: str, port_label: str) -> dict:
    matches = [line for line in report["routes"] if line["route"] == route and line["server"].startswith(port_label)]
    assert len(matches) == 1, (route, port_label, report["routes"])
    return matches[0]


def app_log(stack) -> list[str]:
    try:
        return (stack.dir / "app-access.log").read_text().splitlines()
    except FileNotFoundError:
        return []


# --------------------------------------------------------------------------------------------
# the traps: NOT GATED, and nginx serves the request uncharged

# fixture -> the routes check-nginx must call NOT GATED, each with (finding kind, FILE:LINE as in
# the unit tests, server: "main" or "second", what serves it: "app" or nginx's own body, the
# path the app sees, extra request headers[, scenario]). The scenario, when there is one, runs
# before the request (see before_request): "denied" spends the route's pool first (the
# responder denies it), "repeat" sends the request once first (charged), "responder_down" stops
# the responder.
SITE = "/etc/nginx/sites/site.conf"
PROTECT_AUTH = "{auth_request}"
TRAPS = {
    "traps/missing-protect.conf": {"/api/describe": ("no_auth_request", f"{SITE}:10", "main", "app", None, {})},
    "traps/return-before-gate.conf": {"/api/describe": ("answered_before_gate", f"{SITE}:12", "main", b"stub answer", None, {})},
    "traps/rewrite-last-ungated.conf": {
        "/api/generate": ("no_auth_request", f"{SITE}:11", "main", "app", "/internal/generate", {}),
        "/api/describe": ("no_auth_request", f"{SITE}:11", "main", "app", "/internal/describe", {}),
    },
    "traps/rewrite-unrouted.conf": {"/api/generate": ("unrouted", f"{SITE}:6", "main", "app", "/v2/generate", {})},
    "traps/auth-off-inherited.conf": {"/api/describe": ("auth_request_off", f"{SITE}:7", "main", "app", None, {})},
    "traps/nested-regex.conf": {
        "/api/generate": ("no_auth_request", f"{SITE}:17", "main", "app", None, {}),
        "/api/describe": ("no_auth_request", f"{SITE}:17", "main", "app", None, {}),
    },
    "traps/regex-shadows-prefix.conf": {
        "/api/generate": ("no_auth_request", f"{SITE}:10", "main", "app", None, {}),
        "/api/describe": ("no_auth_request", f"{SITE}:10", "main", "app", None, {}),
    },
    "traps/caret-tilde-shadows-regex.conf": {
        "/api/generate": ("no_auth_request", f"{SITE}:10", "main", "app", None, {}),
        "/api/describe": ("no_auth_request", f"{SITE}:10", "main", "app", None, {}),
    },
    "traps/trailing-slash.conf": {
        "/api/generate": ("no_auth_request", f"{SITE}:14", "main", "app", None, {}),
        "/api/describe": ("no_auth_request", f"{SITE}:14", "main", "app", None, {}),
    },
    "traps/if-method-return.conf": {"/api/describe": ("answered_before_gate", f"{SITE}:9", "main", b"ready", None, {})},
    "traps/if-header-return.conf": {
        "/api/generate": ("answered_before_gate", f"{SITE}:9", "main", b"preview", None, {"X-Preview": "1"}),
        "/api/describe": ("answered_before_gate", f"{SITE}:9", "main", b"preview", None, {"X-Preview": "1"}),
    },
    "traps/satisfy-any.conf": {
        "/api/generate": ("satisfy_any", f"{SITE}:10", "main", "app", None, {}),
        "/api/describe": ("satisfy_any", f"{SITE}:10", "main", "app", None, {}),
    },
    "traps/second-server.conf": {
        "/api/generate": ("ungated_server", f"{SITE}:16", "second", "app", None, {}),
        "/api/describe": ("ungated_server", f"{SITE}:16", "second", "app", None, {}),
    },
    "traps/auth-location-missing.conf": {
        "/api/generate": ("auth_not_gate", PROTECT_AUTH, "main", "app", None, {}),
        "/api/describe": ("auth_not_gate", PROTECT_AUTH, "main", "app", None, {}),
    },
    "traps/includes-elsewhere.conf": {
        "/api/describe": ("no_auth_request", "/etc/nginx/gate/20-health.conf:2", "main", "app", None, {}),
    },
    "traps/error-page-return.conf": {
        "/api/generate": ("no_auth_request", f"{SITE}:14", "main", "app", None, {}),
        "/api/describe": ("no_auth_request", f"{SITE}:14", "main", "app", None, {}),
    },
    "traps/satisfy-any-limit-except.conf": {
        "/api/generate": ("satisfy_any", f"{SITE}:10", "main", "app", None, {}),
        "/api/describe": ("satisfy_any", f"{SITE}:10", "main", "app", None, {}),
    },
    "traps/second-server-auth-off.conf": {
        "/api/generate": ("auth_request_off", f"{SITE}:17", "second", "app", None, {}),
        "/api/describe": ("auth_request_off", f"{SITE}:17", "second", "app", None, {}),
    },
    "traps/charge-uri-request-uri.conf": {
        "/api/generate": ("unrouted", f"{SITE}:8", "main", "app", None, {}),
        "/api/describe": ("unrouted", f"{SITE}:8", "main", "app", None, {}),
    },
    "traps/try-files-ungated.conf": {"/api/describe": ("no_auth_request", f"{SITE}:9", "main", "app", None, {})},
    # A mirror is a subrequest: no access phase. The app gets the client's /ping and the copy.
    "traps/mirror-ungated.conf": {"/api/generate": ("subrequest", f"{SITE}:11", "main", "app", "/api/generate", {})},
    # So is an auth_request to anything but the gate, and an add_after_body.
    "traps/auth-request-route.conf": {"/api/describe": ("subrequest", f"{SITE}:11", "main", "app", "/api/describe", {})},
    "traps/add-after-body.conf": {"/api/describe": ("subrequest", f"{SITE}:11", "main", "app", "/api/describe", {})},
    # Another client path, the app's charged path: /v2/generate reaches the app as /api/generate.
    "traps/proxy-pass-other-prefix.conf": {
        "/api/generate": ("unrouted", f"{SITE}:12", "main", "app", "/api/generate", {}),
        "/api/describe": ("unrouted", f"{SITE}:12", "main", "app", "/api/describe", {}),
    },
    "traps/rewrite-break-other-prefix.conf": {
        "/api/generate": ("unrouted", f"{SITE}:12", "main", "app", "/api/generate", {}),
        "/api/describe": ("unrouted", f"{SITE}:12", "main", "app", "/api/describe", {}),
    },
    "traps/ungated-other-prefix.conf": {
        "/api/generate": ("no_auth_request", f"{SITE}:10", "main", "app", "/api/generate", {}),
        "/api/describe": ("no_auth_request", f"{SITE}:10", "main", "app", "/api/describe", {}),
    },
    # The server rewrite phase runs for the auth subrequest.
    "traps/server-rewrite-auth.conf": {
        "/api/generate": ("auth_not_gate", PROTECT_AUTH, "main", "app", None, {}),
        "/api/describe": ("auth_not_gate", PROTECT_AUTH, "main", "app", None, {}),
    },
    "traps/server-return-auth.conf": {
        "/api/generate": ("auth_answered", f"{SITE}:7", "main", "app", None, {}),
        "/api/describe": ("auth_answered", f"{SITE}:7", "main", "app", None, {}),
    },
    # A hand-written auth location: a denial, then a dead responder, become the app's 200.
    "traps/auth-error-page.conf": {
        "/api/generate": ("auth_answered", f"{SITE}:5", "main", "app", None, {}, "denied"),
        "/api/describe": ("auth_answered", f"{SITE}:5", "main", "app", None, {}, "responder_down"),
    },
    # ... whose cache answers the second request with the first one's allow.
    "traps/auth-cache-allow.conf": {
        "/api/generate": ("auth_answered", f"{SITE}:5", "main", "app", None, {}, "repeat"),
        "/api/describe": ("auth_answered", f"{SITE}:5", "main", "app", None, {}, "repeat"),
    },
    # nginx matches locations on the unmerged path: /api//generate reaches location /.
    "traps/merge-slashes-off.conf": {
        "/api/generate": ("no_auth_request", f"{SITE}:15", "main", "app", None, {}),
        "/api/describe": ("no_auth_request", f"{SITE}:15", "main", "app", None, {}),
    },
    # UNDECIDED: the request check-nginx names was not tried (test_the_probe_cap_is_undecided).
    "traps/probe-cap.conf": {"/api/generate": ("undecidable", f"{SITE}:1", "main", None, None, {})},
    # /api/generate/x%0Ay: PCRE's . does not match the newline.
    "traps/regex-dot-newline.conf": {"/api/generate": ("no_auth_request", f"{SITE}:14", "main", "app", None, {})},
    "traps/posix-class-regex.conf": {
        "/api/generate": ("no_auth_request", f"{SITE}:10", "main", "app", None, {}),
        "/api/describe": ("no_auth_request", f"{SITE}:10", "main", "app", None, {}),
    },
    # /API/GENERATE: the ~* gate asks the responder, whose routes are case-sensitive: unrouted.
    "traps/caseless-gate.conf": {
        "/api/generate": ("unrouted", f"{SITE}:6", "main", "app", None, {}),
        "/api/describe": ("unrouted", f"{SITE}:6", "main", "app", None, {}),
    },
    "traps/if-uri-literal.conf": {"/api/describe": ("answered_before_gate", f"{SITE}:9", "main", b"healthy", None, {})},
    # The map's key /API/Generate/Preview matches /api/generate/preview (keys ignore case).
    "traps/map-uri-key.conf": {
        "/api/generate": ("no_auth_request", f"{SITE}:17", "main", "app", "/previews/generate", {}),
    },
    "traps/if-method-negated.conf": {
        "/api/describe": ("no_auth_request", f"{SITE}:13", "main", "app", "/internal/describe", {}),
    },
    # UNDECIDED: no sample of a backreference (test_a_regex_without_samples_is_undecided_...).
    "traps/regex-backreference.conf": {"/api/describe": ("undecidable", f"{SITE}:10", "main", None, None, {})},
    # The ungated location follows a comment that looks like nginx -T's separator in api.conf.
    "traps/dump-separator-comment.conf": {
        "/api/describe": ("no_auth_request", "/etc/nginx/api.d/api.conf:6", "main", "app", None, {}),
    },
}


def before_request(stack, scenario: str | None, port: int, route: str, method: str, uri: str):
    """What a trap needs before its request (TRAPS' last field)."""
    if scenario == "denied":
        for _ in range(MAX_CHARGES[POOL[route]]):
            assert http_request(port, method, route).status == 200
        assert stack.state(POOL[route])["current"] == 0
    elif scenario == "repeat":
        assert http_request(port, method, uri).status == 200
        assert stack.state(POOL[route]) is not None, "the first request was not charged"
    elif scenario == "responder_down":
        stack.responder.stop()
    else:
        assert scenario is None, scenario


def charged_level(stack, pool: str):
    state = stack.state(pool)
    return None if state is None else state["current"]


def protect_auth_line() -> str:
    lines = (ROOT / "nginx" / "charge-gate-protect.conf").read_text().split("\n")
    index = next(i for i, line in enumerate(lines) if line.lstrip().startswith("auth_request "))
    return f"/usr/local/share/charge-gate/nginx/charge-gate-protect.conf:{index + 1}"


def test_every_trap_fixture_has_a_pair_here():
    names = {f"traps/{p.name}" for p in (FIXTURES / "traps").glob("*.conf")}
    assert names == set(TRAPS) | set(DENIAL_TRAPS)
    assert {f"undecided/{p.name}" for p in (FIXTURES / "undecided").glob("*.conf")} == set(UNDECIDED)


@pytest.mark.parametrize("fixture", sorted(TRAPS))
def test_trap_is_not_gated_and_nginx_serves_it_uncharged(make_stack, fixture):
    stack = fixture_stack(make_stack, fixture)
    r, report = check_nginx(stack)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert report["ok"] is False
    for route, (kind, at, server, served_by, app_uri, headers, *scenario) in TRAPS[fixture].items():
        port = stack.port if server == "main" else stack.nginx.port2
        line = line_for(report, route, f"127.0.0.1:{port}")
        assert line["verdict"] == ("undecided" if kind == "undecidable" else "not_gated"), line
        finding = line["finding"]
        assert finding["kind"] == kind, finding
        assert stack.nginx.unmap(f"{finding['file']}:{finding['line']}") == at.replace(PROTECT_AUTH, protect_auth_line())
        if served_by is None:
            continue

        # The request the checker names, through the real nginx: served, and nothing charged.
        before_request(stack, scenario[0] if scenario else None, port, route, finding["method"], finding["uri"])
        level = charged_level(stack, POOL[route])
        before = len(app_log(stack))
        res = http_request(port, finding["method"], finding["uri"], headers=headers)
        assert res.status == 200, (finding, res)
        if served_by == "app":
            assert res.body.startswith(b'{"app":true,'), res  # (an add_after_body appends a second answer)
            expected = f"{finding['method']} {app_uri or finding['uri']} 200"
            wait_until(lambda: expected in app_log(stack)[before:], 2, what=f"app log line {expected!r}")
        else:
            assert res.body == served_by, res
            assert app_log(stack)[before:] == [], app_log(stack)
        assert charged_level(stack, POOL[route]) == level, f"{route} was charged"
        if not scenario:
            assert level is None, f"{route} was charged"

    # Every route the table does not name is gated here (traps are one mistake each).
    named = {(route, spec[2]) for route, spec in TRAPS[fixture].items()}
    for line in report["routes"]:
        server = "main" if line["server"].startswith(f"127.0.0.1:{stack.port}") else "second"
        if (line["route"], server) not in named:
            assert line["verdict"] == "gated", line


# traps where what the gate denies, or cannot ask about, is served: fixture -> (how, route ->
# (kind, FILE:LINE)). "spent": the route's pool is spent first (its maxCharges, each charged),
# then the same request, which the gate now denies, reaches the app all the same and spends
# nothing. "responder_down": with the responder stopped, the request reaches the app.
DENIAL_TRAPS = {
    "traps/error-page-before-protect.conf": ("spent", {
        "/api/generate": ("denial_served", f"{SITE}:7"),
        "/api/describe": ("denial_served", f"{SITE}:7"),
    }),
    "traps/error-page-500-before-protect.conf": ("responder_down", {
        "/api/generate": ("denial_served", f"{SITE}:7"),
        "/api/describe": ("denial_served", f"{SITE}:7"),
    }),
}
MAX_CHARGES = {"generate": 5, "describe": 20}


@pytest.mark.parametrize("fixture", sorted(DENIAL_TRAPS))
def test_a_denial_the_trap_serves_reaches_the_app(make_stack, fixture):
    stack = fixture_stack(make_stack, fixture)
    r, report = check_nginx(stack)
    assert r.returncode == 1, (r.stdout, r.stderr)
    how, routes = DENIAL_TRAPS[fixture]
    findings = {}
    for route, (kind, at) in routes.items():
        line = line_for(report, route, f"127.0.0.1:{stack.port}")
        assert line["verdict"] == "not_gated", line
        finding = findings[route] = line["finding"]
        assert finding["kind"] == kind, finding
        assert stack.nginx.unmap(f"{finding['file']}:{finding['line']}") == at
    if how == "responder_down":
        stack.responder.stop()
    for route, finding in findings.items():
        pool = POOL[route]
        if how == "spent":
            for _ in range(MAX_CHARGES[pool]):
                res = http_request(stack.port, finding["method"], finding["uri"])
                assert res.status == 200 and res.json()["app"] is True, res
            spent = stack.state(pool)
            assert spent is not None and spent["current"] == 0, spent
        before = len(app_log(stack))
        res = http_request(stack.port, finding["method"], finding["uri"])
        assert res.status == 200 and res.json()["app"] is True, res  # the gate said no (or nothing); the app served it
        expected = f"{finding['method']} {finding['uri']} 200"
        wait_until(lambda: expected in app_log(stack)[before:], 2, what=f"app log line {expected!r}")
        if how == "spent":
            assert stack.state(pool)["current"] == 0
        else:
            assert stack.key(pool) is None, f"{route} was charged"


# --------------------------------------------------------------------------------------------
# UNDECIDED: what nginx does depends on the request in a way no reading of the config can tell

# fixture -> route -> (FILE:LINE, headers of a request nginx then serves uncharged).
UNDECIDED = {
    "undecided/error-page-variable.conf": {
        "/api/generate": (f"{SITE}:11", {"X-Preview": "1", "X-Fallback": "@app"}),
        "/api/describe": (f"{SITE}:11", {"X-Preview": "1", "X-Fallback": "@app"}),
    },
}


@pytest.mark.parametrize("fixture", sorted(UNDECIDED))
def test_undecided_is_said_and_a_client_can_pass_uncharged(make_stack, fixture):
    stack = fixture_stack(make_stack, fixture)
    r, report = check_nginx(stack)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert report["ok"] is False
    for route, (at, headers) in UNDECIDED[fixture].items():
        line = line_for(report, route, f"127.0.0.1:{stack.port}")
        assert line["verdict"] == "undecided", line
        finding = line["finding"]
        assert finding["kind"] == "undecidable", finding
        assert stack.nginx.unmap(f"{finding['file']}:{finding['line']}") == at
        before = len(app_log(stack))
        res = http_request(stack.port, finding["method"], finding["uri"], headers=headers)
        assert res.status == 200 and res.json()["app"] is True, res
        expected = f"{finding['method']} {finding['uri']} 200"
        wait_until(lambda: expected in app_log(stack)[before:], 2, what=f"app log line {expected!r}")
        assert stack.key(POOL[route]) is None, f"{route} was charged"


def test_the_probe_cap_is_undecided_and_the_untried_request_is_uncharged(make_stack):
    """More requests to try than GateAnalyser.maximumProbes: UNDECIDED, naming the cap, never
    gated; the ungated location past the cap really serves its path uncharged."""
    stack = fixture_stack(make_stack, "traps/probe-cap.conf")
    r, report = check_nginx(stack)
    assert r.returncode == 1
    line = line_for(report, "/api/generate", f"127.0.0.1:{stack.port}")
    assert line["verdict"] == "undecided", line
    assert "not tried: more than 96 requests to try" in line["finding"]["message"], line
    assert all(p["uri"] != "/api/generate/zz" for p in line["probes"])
    res = http_request(stack.port, "POST", "/api/generate/zz")
    assert res.status == 200 and res.json()["app"] is True, res
    assert stack.key("generate") is None, "/api/generate/zz was charged"
    res = http_request(stack.port, "POST", "/api/generate/m00")  # a tried one: gated
    assert res.status == 200 and stack.key("generate") is not None


def test_a_regex_without_samples_is_undecided_and_its_paths_are_uncharged(make_stack):
    """A regex location the sampler cannot guess paths for (a backreference): UNDECIDED; a path
    it matches under the route really is served uncharged."""
    stack = fixture_stack(make_stack, "traps/regex-backreference.conf")
    r, report = check_nginx(stack)
    assert r.returncode == 1
    line = line_for(report, "/api/describe", f"127.0.0.1:{stack.port}")
    assert line["verdict"] == "undecided" and "cannot guess the paths" in line["finding"]["message"], line
    res = http_request(stack.port, "GET", "/api/describe/aa")
    assert res.status == 200 and res.json()["app"] is True, res
    assert stack.key("describe") is None, "/api/describe/aa was charged"
    res = http_request(stack.port, "GET", "/api/describe/ab")  # not matched: the gated prefix
    assert res.status == 200 and stack.key("describe") is not None


def test_merge_slashes_is_the_default_servers(make_stack):
    """nginx parses the request line with the default server of the address: `merge_slashes
    off` in another server there changes nothing (check-nginx: gated; nginx: charged)."""
    snippets = "/usr/local/share/charge-gate/nginx/"
    text = "\n".join([
        "# configuration file /etc/nginx/sites/site.conf:",
        "server {", "    listen 127.0.0.1:8080;", "    server_name first;", "    return 404;", "}",
        "server {", "    listen 127.0.0.1:8080;", "    server_name second;", "    merge_slashes off;",
        f"    include {snippets}charge-gate-server.conf;",
        f"    location /api/generate {{ include {snippets}charge-gate-protect.conf; proxy_pass http://app; }}",
        f"    location /api/describe {{ include {snippets}charge-gate-protect.conf; proxy_pass http://app; }}",
        "    location / { proxy_pass http://app; }", "}", ""])
    stack = make_stack(ROUTES_YAML, start=False)
    stack.nginx = FixtureNginx(stack.dir, stack.port, "merge-slashes-second", text=text)
    stack.start()
    r, report = check_nginx(stack)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert [line["verdict"] for line in report["routes"]] == ["gated", "gated"]
    answer = raw_request(stack.port, b"POST /api//generate HTTP/1.1\r\nHost: second\r\nContent-Length: 0\r\n"
                                      b"Connection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ") and b'"uri":"/api//generate"' in answer, answer
    assert stack.key("generate") is not None, "nginx merged the slashes: /api//generate is charged"


# --------------------------------------------------------------------------------------------
# the good configs: gated, and charged

GOOD = sorted(f"good/{p.name}" for p in (FIXTURES / "good").glob("*.conf"))


@pytest.mark.parametrize("fixture", GOOD)
def test_good_config_is_gated_and_nginx_charges_it(make_stack, fixture):
    stack = fixture_stack(make_stack, fixture)
    r, report = check_nginx(stack)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert report["ok"] is True
    assert [w["kind"] for w in report["warnings"]] == ["server_without_gate"]  # the stand-in app
    spent: dict[str, int] = {}
    for line in report["routes"]:
        assert line["verdict"] == "gated", line
        port = stack.port if line["server"].startswith(f"127.0.0.1:{stack.port}") else stack.nginx.port2
        probes = [p for p in line["probes"] if p["verdict"] == "gated"]
        assert probes, line
        for probe in probes[:2]:
            res = http_request(port, probe["method"], probe["uri"])
            assert res.status == 200, (probe, res)
            assert res.json()["app"] is True, res
            pool = POOL[line["route"]]
            spent[pool] = spent.get(pool, 0) + 1
            state = stack.state(pool)
            assert state is not None, f"{probe} was not charged"
    assert spent


def raw_variants(route: str) -> set[str]:
    """The request targets check-nginx tries for a route as a client may write them
    (GateAnalyser.rawVariants): with a query string, and with its last letter escaped."""
    base = "/x" if route == "/" else route
    return {base + "?q=1", base[:-1] + "%{:02X}".format(ord(base[-1]))}


@pytest.mark.parametrize("fixture", GOOD)
def test_good_config_charges_the_probes_sent_as_written(make_stack, fixture):
    """The probes with a query string or a %XX escape (nginx routes them as the path; the
    snippet's $charge_gate_uri is nginx's decoded $uri): check-nginx says they are charged,
    and each one sent through nginx spends a charge."""
    stack = fixture_stack(make_stack, fixture)
    r, report = check_nginx(stack)
    assert r.returncode == 0, (r.stdout, r.stderr)
    tried = 0
    for line in report["routes"]:
        port = stack.port if line["server"].startswith(f"127.0.0.1:{stack.port}") else stack.nginx.port2
        pool = POOL[line["route"]]
        for probe in line["probes"]:
            if probe["uri"] not in raw_variants(line["route"]):
                continue
            if probe["verdict"] == "not_served":  # nginx refuses it (a method condition): as checked
                res = http_request(port, probe["method"], probe["uri"])
                assert res.status >= 400, (probe, res)
                continue
            assert probe["verdict"] == "gated" and probe["chargedURI"] == line["route"], probe
            before = (stack.state(pool) or {"current": MAX_CHARGES[pool]})["current"]
            res = http_request(port, probe["method"], probe["uri"])
            assert res.status == 200 and res.json()["app"] is True, (probe, res)
            assert stack.state(pool)["current"] == before - 1, f"{probe} was not charged"
            tried += 1
    assert tried


# --------------------------------------------------------------------------------------------
# the warned configs: gated, a warning (exit 1 with --strict), and what nginx does there

def upstream_elsewhere(stack):
    """Every auth subrequest fails: every gated request is refused, none reaches the app."""
    before = len(app_log(stack))
    for method, uri in [("POST", "/api/generate"), ("GET", "/api/describe")]:
        res = http_request(stack.port, method, uri)
        assert res.status == 503, res
    assert app_log(stack)[before:] == []
    assert stack.key("generate") is None and stack.key("describe") is None


def ssi_include(stack):
    """What the page shows decides: with an include of a charged route in it, the app serves the
    route uncharged; without, nothing reaches the app."""
    before = len(app_log(stack))
    res = http_request(stack.port, "GET", "/pages/x", headers={"X-Comment": "hello"})
    assert res.status == 200 and res.body == b"<p>hello</p>", res
    assert app_log(stack)[before:] == []
    res = http_request(stack.port, "GET", "/pages/x", headers={"X-Comment": '<!--# include virtual="/api/describe" -->'})
    assert res.status == 200, res
    assert res.body == b'<p>{"app":true,"method":"GET","uri":"/api/describe"}</p>', res
    wait_until(lambda: "GET /api/describe 200" in app_log(stack)[before:], 2, what="the included request in the app log")
    assert stack.key("describe") is None, "the include was charged"


def error_page_keeps_status(stack):
    """A denial stays a denial (nginx's own page, not the responder's): not a free pass."""
    for _ in range(MAX_CHARGES["generate"]):
        assert http_request(stack.port, "POST", "/api/generate").status == 200
    before = len(app_log(stack))
    res = http_request(stack.port, "POST", "/api/generate")
    assert res.status == 429, res
    assert app_log(stack)[before:] == []
    assert stack.state("generate")["current"] == 0


# fixture -> (warning kind, FILE:LINE as in the unit tests, what nginx does there)
WARNED = {
    "warnings/auth-upstream-elsewhere.conf": ("listen_mismatch", f"{SITE}:1", upstream_elsewhere),
    "warnings/ssi-include.conf": ("ssi_subrequest", f"{SITE}:11", ssi_include),
    "warnings/auth-error-page-status.conf": ("auth_error_page", f"{SITE}:5", error_page_keeps_status),
}


def test_every_warned_fixture_has_a_pair_here():
    names = {f"warnings/{p.name}" for p in (FIXTURES / "warnings").glob("*.conf")}
    assert names == set(WARNED)


@pytest.mark.parametrize("fixture", sorted(WARNED))
def test_warned_config_is_gated_with_its_warning_and_nginx_agrees(make_stack, fixture):
    kind, at, scenario = WARNED[fixture]
    stack = fixture_stack(make_stack, fixture)
    r, report = check_nginx(stack)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert report["ok"] is True
    assert all(line["verdict"] == "gated" for line in report["routes"]), report["routes"]
    warnings = report["warnings"]
    assert [w["kind"] for w in warnings] == ["server_without_gate", kind]  # the stand-in app, then this one
    assert stack.nginx.unmap(f"{warnings[1]['file']}:{warnings[1]['line']}") == at
    strict, _ = check_nginx(stack, "--strict")
    assert strict.returncode == 1, strict
    scenario(stack)


def test_a_responder_on_another_socket_is_a_warning_and_every_request_a_503(make_stack):
    """The config's listen is not the socket nginx's upstream names (good/protect-all.conf with
    the responder on other.sock): check-nginx warns; every gated request is a 503. With
    --listen, the socket nginx uses, the warning goes."""
    stack = make_stack(ROUTES_YAML, start=False)
    stack.nginx = FixtureNginx(stack.dir, stack.port, "good/protect-all.conf")
    other = stack.dir / "other.sock"
    stack.write_config = lambda: Stack.write_config(stack, listen=str(other))
    stack.responder.sock = other
    stack.start()
    r, report = check_nginx(stack)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert [w["kind"] for w in report["warnings"]] == ["server_without_gate", "listen_mismatch"]
    warning = report["warnings"][1]
    assert stack.nginx.unmap(f"{warning['file']}:{warning['line']}") == "/etc/nginx/nginx.conf:20"
    assert stack.nginx.unmap(warning["message"]).endswith(
        "passes to upstream charge_gate (/etc/nginx/nginx.conf:20): unix:/srv/gate/charge.sock, and none is the "
        "responder's listen /srv/gate/other.sock: every auth subrequest fails (each gated request a 500 or 503), or "
        "reaches whatever listens there"), warning
    before = len(app_log(stack))
    res = http_request(stack.port, "POST", "/api/generate")
    assert res.status == 503 and res.body == SERVICE_UNAVAILABLE, res
    assert app_log(stack)[before:] == []
    r, report = check_nginx(stack, "--listen", str(stack.dir / "charge.sock"))
    assert [w["kind"] for w in report["warnings"]] == ["server_without_gate"]


def test_hostile_http_settings_keep_a_denial_a_429(make_stack):
    """good/hostile-http-settings.conf: error pages to the app, intercepted errors, a cache
    validity for every status, X-Accel-Expires ignored... around the shipped snippets. A charge
    is still a charge, a denial still the 429 JSON, a dead responder still the 503 JSON."""
    stack = fixture_stack(make_stack, "good/hostile-http-settings.conf")
    r, report = check_nginx(stack)
    assert r.returncode == 0 and [w["kind"] for w in report["warnings"]] == ["server_without_gate"], r.stdout
    for n in range(MAX_CHARGES["generate"]):
        res = http_request(stack.port, "POST", "/api/generate")
        assert res.status == 200 and res.json()["app"] is True, res
        assert stack.state("generate")["current"] == MAX_CHARGES["generate"] - n - 1
    before = len(app_log(stack))
    for _ in range(3):  # the responder's denial, then nginx's cached one
        assert_out_of_charge(http_request(stack.port, "POST", "/api/generate"), "generate")
    assert app_log(stack)[before:] == []
    stack.responder.stop()
    res = http_request(stack.port, "GET", "/api/describe")
    assert res.status == 503 and res.body == SERVICE_UNAVAILABLE, res
    assert app_log(stack)[before:] == []


def test_text_output_names_the_file_and_line(make_stack):
    stack = fixture_stack(make_stack, "traps/missing-protect.conf")
    r, _ = check_nginx(stack, fmt="text")
    assert r.returncode == 1
    text = stack.nginx.unmap(r.stdout)
    assert "/api/generate  POST     gated" in text
    assert f"NOT GATED: GET /api/describe: location / ({SITE}:10) has no auth_request" in text
    assert text.rstrip().splitlines()[-1].startswith("FAILED: 2 lines (route × server) in 1 gated server: 1 gated, 1 NOT GATED")


def test_limit_except_skips_the_locations_rewrite_directives_for_other_methods(make_stack):
    """good/limit-except.conf: for a POST, nginx uses limit_except's configuration from the
    location search on, so the location's `if (...) { return 200 ...; }` never runs: the POST is
    charged, as check-nginx says (it would be answered before the gate if the return ran)."""
    stack = fixture_stack(make_stack, "good/limit-except.conf")
    r, report = check_nginx(stack)
    assert r.returncode == 0, (r.stdout, r.stderr)
    res = http_request(stack.port, "POST", "/api/describe")
    assert res.status == 200 and res.json()["app"] is True, res
    assert stack.state("describe") is not None, "the POST was not charged"
    res = http_request(stack.port, "POST", "/api/describe", source="127.0.0.2")
    assert res.status == 403, res


def dump_of(stack) -> str:
    """The `nginx -T` text of a written FixtureNginx, as nginx prints it (files in the order of
    their first include)."""
    r = subprocess.run([NGINX, "-T", "-q", "-p", f"{stack.dir}/", "-c", str(stack.nginx.conf), "-e", str(stack.dir / "error.log")],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_a_second_satisfy_in_one_block_is_refused_by_nginx_and_check_nginx(make_stack, tmp_dir):
    """A `satisfy any` beside the snippet's `satisfy all` is no configuration nginx runs ("satisfy"
    directive is duplicate): check-nginx exits 2 with nginx's message, and refuses a hand-made
    dump of it (nginx -T never prints one) rather than report on it."""
    stack = make_stack(ROUTES_YAML, start=False, start_responder=False, redis=False)
    stack.nginx = FixtureNginx(stack.dir, stack.port, "good/satisfy-all.conf")
    stack.nginx.write()
    stack.write_config()
    site = stack.dir / "etc" / "nginx" / "sites" / "site.conf"
    # What nginx -T would print, were the config below valid: the valid one's, changed alike.
    dump = dump_of(stack).replace("allow 127.0.0.1;", "satisfy any;", 1)
    site.write_text(site.read_text().replace("allow 127.0.0.1;", "satisfy any;"))
    r, _ = check_nginx(stack)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert '"satisfy" directive is duplicate in ' in r.stderr and "site.conf:8" in r.stderr, r.stderr

    (tmp_dir / "dump.txt").write_text(dump)
    r = run_check("--config", str(stack.config), "--dump", str(tmp_dir / "dump.txt"))
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stdout == ""
    assert f"{site}:8: \"satisfy\" directive is duplicate: nginx refuses this configuration" in r.stderr, r.stderr


# --------------------------------------------------------------------------------------------
# the location search, URI by URI, against nginx (the same table as NginxLocationMatcherTests)

MATCHING = [
    ("/exact", "= /exact"), ("/exact/", "/exact"), ("/exactly", "/exact"), ("/", "/"), ("/x", "/"),
    ("/api", "/api"), ("/api/", "/api/"), ("/apix", "/api"), ("/api/x", "/api/"), ("/api/nested/a", "/api/nested/"),
    ("/api/nested/a.inner", "~ inner"), ("/api/nested/a.mid", "~ mid"), ("/api/x.mid", "~ mid"),
    ("/api/nested/a.png", "~ png|mid"), ("/api/static/a.png", "^~ /api/static/"), ("/api/a.png", "~ png|mid"),
    ("/a.jpg", "~* JPG"), ("/a.JpG", "~* JPG"), ("/api/gen", "~ gen|desc"), ("/api/generate", "~ gen|desc"),
    ("/api/generate.mid", "~ mid"), ("/dir", "301 /dir/"), ("/dir/", "/dir/"), ("/dir-x", "/dir-x"),
    ("/dir.y", "/dir.y"), ("/d2", "301 /d2/"), ("/plain", "/"), ("/ex", "301 = /ex/"), ("/ex/", "= /ex/"),
    ("/api/nested", "301 /api/nested/"), ("/api/static", "301 ^~ /api/static/"),
]


def test_nginx_picks_the_locations_the_matcher_picks(make_stack):
    stack = make_stack(ROUTES_YAML, start=False, start_responder=False, redis=False)
    stack.nginx = FixtureNginx(stack.dir, stack.port, "matching.conf")
    stack.start()
    got = []
    for uri, _ in MATCHING:
        res = http_request(stack.port, "GET", uri)
        loc = res.header("X-Loc")
        got.append((uri, f"301 {loc}" if res.status == 301 else loc))
    assert got == MATCHING


# --------------------------------------------------------------------------------------------
# the regexes, case by case, against nginx's PCRE2 (the same table as NginxPCRETests)

def pcre_cases() -> list[tuple[str, str, str, bool]]:
    out = []
    for line in (FIXTURES / "pcre-cases.tsv").read_text().splitlines():
        if line and not line.startswith("#"):
            pattern, op, path, expected = line.split("\t")
            out.append((pattern, op, path, expected == "1"))
    return out


def test_nginx_pcre_matches_as_the_model(make_stack):
    cases = pcre_cases()
    lines = ["# configuration file /etc/nginx/sites/site.conf:"]
    for i, (pattern, op, _, _) in enumerate(cases):
        lines.append(f'map $uri $pcre_{i} {{ default 0; "{op}{pattern}" 1; }}')
    values = " ".join(f"$pcre_{i}" for i in range(len(cases)))
    snippets = "/usr/local/share/charge-gate/nginx/"
    lines += ["server {", "    listen 127.0.0.1:8080;", f"    include {snippets}charge-gate-server.conf;",
              f'    location / {{ return 200 "{values}"; }}',
              f"    location /gated/ {{ include {snippets}charge-gate-protect.conf; }}", "}"]
    stack = make_stack(ROUTES_YAML, start=False, start_responder=False, redis=False)
    stack.nginx = FixtureNginx(stack.dir, stack.port, "pcre", text="\n".join(lines) + "\n")
    stack.start()
    got, want = [], []
    for i, (pattern, op, path, expected) in enumerate(cases):
        res = http_request(stack.port, "GET", path)
        assert res.status == 200, (path, res)
        got.append((op, pattern, path, res.body.decode().split(" ")[i] == "1"))
        want.append((op, pattern, path, expected))
    assert got == want


# --------------------------------------------------------------------------------------------
# errors: exit 2 when nginx's configuration cannot be read

def run_check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), "check-nginx", *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60)


def test_unreadable_nginx_config_exits_2(tmp_dir):
    config = tmp_dir / "cg.yaml"
    config.write_text(ROUTES_YAML)
    r = run_check("--config", str(config), "--nginx-conf", str(tmp_dir / "missing.conf"))
    assert r.returncode == 2, r
    assert r.stdout == ""
    assert "check-nginx: nginx -T failed (exit 1): " in r.stderr and "missing.conf" in r.stderr, r.stderr

    broken = tmp_dir / "broken.conf"
    broken.write_text(f"pid {tmp_dir}/nginx.pid;\nerror_log {tmp_dir}/error.log;\nevents {{}}\nhttp {{\n server {{\n")
    r = run_check("--config", str(config), "--nginx-conf", str(broken))
    assert r.returncode == 2, r
    assert 'unexpected end of file, expecting "}"' in r.stderr, r.stderr

    r = run_check("--config", str(config), "--nginx-conf", str(broken), "--nginx", str(tmp_dir / "no-nginx"))
    assert r.returncode == 2, r
    assert "check-nginx: cannot run" in r.stderr, r.stderr

    not_a_dump = tmp_dir / "dump.txt"
    not_a_dump.write_text("http { }\n")
    r = run_check("--config", str(config), "--dump", str(not_a_dump))
    assert r.returncode == 2, r
    assert "this is not the output of nginx -T" in r.stderr, r.stderr

    r = run_check("--config", str(config), "--dump", str(tmp_dir / "none.txt"))
    assert r.returncode == 2 and "cannot read" in r.stderr, r

    bad_yaml = tmp_dir / "bad.yaml"
    bad_yaml.write_text("pools: 3\n")
    r = run_check("--config", str(bad_yaml), "--dump", str(not_a_dump))
    assert r.returncode == 2 and "bad.yaml:1:" in r.stderr, r


def test_a_saved_dump_gives_the_same_report(make_stack, tmp_dir):
    stack = fixture_stack(make_stack, "traps/nested-regex.conf")
    r, live = check_nginx(stack)
    dump = subprocess.run([NGINX, "-T", "-q", "-e", "stderr", "-c", str(stack.nginx.conf)], capture_output=True, timeout=20)
    assert dump.returncode == 0, dump.stderr
    (tmp_dir / "dump.txt").write_bytes(dump.stdout)
    r2 = run_check("--config", str(stack.config), "--dump", str(tmp_dir / "dump.txt"), "--format", "json")
    assert r2.returncode == r.returncode == 1
    assert json.loads(r2.stdout) == live


# --------------------------------------------------------------------------------------------
# deploy/local-stack up prints the table

def test_local_stack_prints_the_table(tmp_dir):
    d = tmp_dir / "stack"
    env = dict(os.environ, CHARGE_GATE_BIN=str(BIN))
    try:
        r = subprocess.run([str(LOCAL_STACK), "up", "--memory", "--port", str(free_port()), "--dir", str(d)],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=90, env=env)
        assert r.returncode == 0, r
        assert "SERVER" in r.stdout and "VERDICT" in r.stdout, r.stdout
        assert "/api/generate  POST     gated" in r.stdout, r.stdout
        assert "ok: 3 lines (route × server) in 1 gated server: 3 gated, 0 NOT GATED" in r.stdout, r.stdout
    finally:
        subprocess.run([str(LOCAL_STACK), "down", "--dir", str(d)], stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=60)
        shutil.rmtree(d, ignore_errors=True)
