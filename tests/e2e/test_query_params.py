"""A query parameter given twice (docs/http.md): every endpoint that reads the query answers
400 bad_request naming it, through real nginx, on both stores; nothing is spent or read."""

from __future__ import annotations

from harness import assert_json

TOKEN = "q-t0ken"
AUTH = {"Authorization": "Bearer " + TOKEN}

CASES = [
    ("/api/usage/check?pools=generate-image&pools=describe-image", None,
     "pools: given 2 times; list every pool in one, as ?pools=a,b"),
    ("/api/usage/check?pools=generate-image&x=1&pools=nope&pools=", None,
     "pools: given 3 times; list every pool in one, as ?pools=a,b"),
    ("/api/usage?subject=alice&subject=bob", AUTH, "subject: given 2 times; give it once"),
    ("/api/usage?subject=alice&subject=bob", None, "subject: given 2 times; give it once"),
    ("/api/usage/events?limit=1&limit=1000", AUTH, "limit: given 2 times; give it once"),
    ("/api/usage/events?pool=generate-image&pool=describe-image", AUTH, "pool: given 2 times; give it once"),
    ("/api/usage/events?subject=a&subject=b", AUTH, "subject: given 2 times; give it once"),
    ("/api/usage/events?since=0&until=1&since=5", AUTH, "since: given 2 times; give it once"),
]


def test_a_repeated_parameter_is_a_bad_request(any_store):
    stack = any_store(settings=f"adminToken: {TOKEN}\n")
    stack.post("/api/generate")  # one spend, so that a silently half-read answer would show it
    for path, headers, message in CASES:
        r = stack.get(path, headers=headers)
        assert r.status == 400, (path, r)
        assert_json(r)
        assert r.body == ('{"error":"bad_request","message":"%s"}' % message).encode(), (path, r)
    # Given once, the same endpoints answer.
    r = stack.get("/api/usage/check?pools=generate-image,describe-image")
    assert r.status == 200 and r.json()["pools"][0] == {"id": "generate-image", "available": True}, r
    assert stack.get("/api/usage/events?limit=1", headers=AUTH).status == 200
    assert stack.get("/api/usage?subject=alice", headers=AUTH).status == 200
    # Parameters an endpoint does not read may repeat (cache busters): ignored as before.
    assert stack.get("/api/usage/check?pools=generate-image&_=1&_=2").status == 200
    # Nothing above spent anything: still 4 of 5 left.
    assert stack.usage()["generate-image"]["current"] == 4
