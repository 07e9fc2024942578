"""The shipped auth location holds whatever nginx config surrounds it (issue 20).

A matrix: the project's snippets, unmodified, included into a server whose http{} and server{}
blocks set what operators commonly set there and the auth location would inherit: error_page
for 4xx/5xx codes (to a fallback that proxies to the app), intercept_errors, cache validity,
cache keys, use_stale, satisfy/allow, a server-level auth_request, add_header, access_log,
server-level rewrite and if/return, proxy_intercept_errors, recursive_error_pages. In each:

- a denial stays a denial: the exact 429 JSON, the app never sees the request;
- an allow is never cached: a pool of 2 lets exactly 2 GETs through, the rest are 429s;
- a dead responder stays the 503 JSON, the app never sees the request.

Before the auth location had its own error_page, fastcgi_intercept_errors and cache validity
(and the responder marked every answer X-Accel-Expires: 0), the fallback, intercept and
micro-caching rows let requests reach the app uncharged; the satisfy row did before
charge-gate-protect.conf said `satisfy all`.

Also here: only a charged allow is replayed for a later pass of the same request (an unrouted
first pass that try_files sends into a charged route is charged there), and
charge-gate-protect.conf included at server level charges what it should.
"""

from __future__ import annotations

import pytest

from harness import assert_json, assert_out_of_charge, assert_unavailable

CONFIG = """\
pools:
  - id: one
    maxCharges: 1
    rechargeIntervalHours: 100
  - id: two
    maxCharges: 2
    rechargeIntervalHours: 100
routes:
  - prefix: /api/one
    pools: [one]
  - prefix: /api/two
    pools: [two]
  - prefix: /open/one
    pools: [one]
"""

APP = "http://unix:@DIR@/app.sock"
FALLBACK = f"""
        location @fallback {{
            proxy_pass {APP};
        }}
"""

# id -> (http{} text, server{} text). The server text lands after the template's locations.
SURROUNDINGS = {
    "error_page-5xx-fallback": ("", "        error_page 500 502 503 504 = @fallback;\n" + FALLBACK),
    "intercept-error_page-4xx-spa": (
        "    fastcgi_intercept_errors on;\n",
        "        error_page 401 403 404 = @fallback;\n" + FALLBACK),
    "error_page-403-200-page": (
        "    fastcgi_intercept_errors on;\n",
        "        error_page 403 =200 /page.html;\n        location = /page.html { return 200 'page'; }\n"),
    "micro-caching": ("    fastcgi_cache_valid any 1m;\n", ""),
    "cache-everything": (
        "    fastcgi_cache_valid 200 204 403 500 502 10m;\n"
        "    fastcgi_cache_use_stale error timeout updating http_500 http_503;\n"
        "    fastcgi_cache_key $uri;\n"
        "    fastcgi_cache_lock on;\n"
        "    fastcgi_cache_min_uses 1;\n", ""),
    "satisfy-any-allow": ("", "        satisfy any;\n        allow 127.0.0.1;\n        allow ::1;\n"),
    "server-auth_request": (
        "", "        auth_request /_yes;\n        location = /_yes { return 204; }\n"),
    "recursive-error-pages": (
        "", "        recursive_error_pages on;\n        error_page 403 429 500 502 503 504 = @fallback;\n" + FALLBACK),
    "proxy-intercept-add_header-access_log": (
        "    proxy_intercept_errors on;\n    access_log off;\n",
        "        add_header X-Frame-Options DENY always;\n"
        "        error_page 500 502 503 504 /50x.html;\n"
        "        location = /50x.html { return 200 'sorry'; }\n"),
    "server-rewrite-if-return": (
        "", "        rewrite ^/legacy/(.*)$ /api/$1 last;\n"
        "        if ($http_x_maintenance) { return 503; }\n"
        "        if ($request_method = OPTIONS) { return 204; }\n"),
}


def app_hits_for(stack, prefix: str) -> int:
    return sum(1 for line in stack.app_hits_settled() if line.split(" ")[1].startswith(prefix))


@pytest.mark.parametrize("name", list(SURROUNDINGS))
def test_the_auth_location_holds_whatever_surrounds_it(make_stack, name):
    http_extra, server_extra = SURROUNDINGS[name]
    s = make_stack(CONFIG, redis=False, extra=server_extra, http_extra=http_extra)

    # A denial stays a denial, for POST and for GET (the edge deny cache's methods) alike.
    assert s.post("/api/one").status == 200
    for method in ["POST", "GET", "GET", "GET"]:
        r = s.request(method, "/api/one")
        assert_out_of_charge(r, "one")
    assert app_hits_for(s, "/api/one") == 1

    # An allow is never cached: exactly the pool's 2 GETs pass.
    statuses = [s.get("/api/two").status for _ in range(6)]
    assert statuses == [200, 200, 429, 429, 429, 429], statuses
    assert app_hits_for(s, "/api/two") == 2

    # A dead responder stays the 503, for every route and an unrouted path alike.
    s.responder.stop()
    for method, path in [("POST", "/api/two"), ("GET", "/api/two/x"), ("GET", "/api/elsewhere")]:
        assert_unavailable(s.request(method, path))
    assert app_hits_for(s, "/api/two") == 2
    assert app_hits_for(s, "/api/elsewhere") == 0


# An unrouted first pass is not a charged allow: try_files sends `/anything` into the charged
# /api/one, and that second pass must ask the responder.
TRY_FILES = """\
        location / {
            include @SNIPPETS@/charge-gate-protect.conf;
            try_files $uri /api/one;
        }
"""


def test_only_a_charged_allow_is_replayed(any_store):
    s = any_store(CONFIG, extra=TRY_FILES)
    assert s.post("/anything").status == 200  # charged on /api/one, where it ends
    for _ in range(3):
        assert_out_of_charge(s.post("/anything"), "one")
        assert_out_of_charge(s.post("/api/one"), "one")
    assert app_hits_for(s, "/api/one") == 1
    # A charged first pass is still answered by nginx for the later pass (charged once):
    # /api/two/x is charged on /api/two and stays there.
    assert s.post("/api/two/x").status == 200
    assert s.post("/api/two/x").status == 200
    assert_out_of_charge(s.post("/api/two/x"), "two")


# charge-gate-protect.conf included once in the server{}: every location of it is gated, the
# usage endpoints are not charged, and the path charged is the client's, not the auth
# location's.
SERVER_LEVEL = """\
        include @SNIPPETS@/charge-gate-protect.conf;
        location /open/ {
            proxy_pass http://unix:@DIR@/app.sock;
        }
"""


def test_protect_at_server_level_charges(any_store):
    s = any_store(CONFIG, extra=SERVER_LEVEL)
    assert s.post("/open/one").status == 200
    for _ in range(3):
        assert_out_of_charge(s.post("/open/one"), "one")
        assert_out_of_charge(s.get("/open/one/x"), "one")
    assert app_hits_for(s, "/open/one") == 1
    # Unrouted paths pass; the usage endpoints answer and charge nothing.
    assert s.get("/open/free").status == 200
    usage = s.get("/api/usage")
    assert usage.status == 200, usage
    assert_json(usage)
    pools = {p["id"]: p["current"] for p in usage.json()["pools"]}
    assert pools == {"one": 0, "two": 2}, pools


# A hand-written server-level `set $charge_gate_uri $uri;` runs again inside the auth
# subrequest: the responder is asked about the auth location itself, and denies.
OVERWRITTEN = """\
        set $charge_gate_uri $uri;
        location /raw/ {
            auth_request /_charge_gate/auth;
            auth_request_set $charge_gate_status $charge_gate_status_captured;
            auth_request_set $charge_gate_body $upstream_http_x_charge_body;
            auth_request_set $charge_gate_upstream_status $upstream_status;
            error_page 403 = @charge_gate_denied;
            error_page 500 = @charge_gate_error;
            proxy_pass http://unix:@DIR@/app.sock;
        }
"""


def test_the_responder_never_allows_the_auth_locations_own_path(make_stack):
    s = make_stack(CONFIG, redis=False, extra=OVERWRITTEN)
    for path in ["/raw/x", "/raw/one"]:
        assert_unavailable(s.post(path))
    assert app_hits_for(s, "/raw/") == 0
    assert "the charged path is under /_charge_gate/" in s.responder.log_text()
