// nginx/charge-fetch.js with Node's built-in test runner: node --test tests/js/
//
// The module is loaded from its source text through a data: URL, so that it stays a plain .js
// file (nginx serves it as it is) without a package.json "type": "module" anywhere.

import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";

const source = await readFile(new URL("../../nginx/charge-fetch.js", import.meta.url), "utf8");
const { chargeFetch, createChargeFetch, retryString } = await import(
  "data:text/javascript;base64," + Buffer.from(source).toString("base64")
);

const MIN = 60_000;
const HOUR = 3_600_000;

// The same table as Tests/ChargeGateCoreTests/Rendering/UsagePageTests.swift (retryString).
const retryTable = [
  [0, "0m"],
  [-5, "0m"],
  [1, "1m"],
  [59_000, "1m"],
  [60_000, "1m"],
  [60_001, "2m"],
  [61_000, "2m"],
  [45 * MIN - 1, "45m"],
  [45 * MIN, "45m"],
  [59 * MIN, "59m"],
  [59 * MIN + 1, "1h"],
  [HOUR, "1h"],
  [HOUR + 1, "1h 1m"],
  [2 * HOUR - 1, "2h"],
  [2 * HOUR + 14 * MIN + 1, "2h 15m"],
  [2 * HOUR + 15 * MIN, "2h 15m"],
  [25 * HOUR, "25h"],
  [24 * HOUR + 59 * MIN, "24h 59m"],
];

for (const [ms, expected] of retryTable) {
  test(`retryString(${ms}) is ${JSON.stringify(expected)}`, () => {
    assert.equal(retryString(ms), expected);
  });
}

test("retryString of a missing or broken value is 0m", () => {
  for (const v of [undefined, null, NaN, "x", Infinity, -Infinity]) assert.equal(retryString(v), "0m", String(v));
  assert.equal(retryString("3600000"), "1h"); // a numeric string, as a lenient JSON producer might send
});

// --------------------------------------------------------------------------------------------
// chargeFetch against a stubbed fetch

const realFetch = globalThis.fetch;
let calls;

function stub(makeResponse) {
  globalThis.fetch = async (input, init) => {
    calls.push({ input, init });
    return makeResponse();
  };
}

const json = (status, body, headers = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });

function recorder() {
  const seen = { outOfCharge: [], insufficientCredits: [] };
  return {
    seen,
    handlers: {
      onOutOfCharge: (...args) => seen.outOfCharge.push(args),
      onInsufficientCredits: (...args) => seen.insufficientCredits.push(args),
    },
  };
}

beforeEach(() => {
  calls = [];
});
afterEach(() => {
  globalThis.fetch = realFetch;
});

test("429 out_of_charge: onOutOfCharge(body, retry string, null); the Response is returned unread", async () => {
  const body = { error: "out_of_charge", retryAfterMs: 2 * HOUR + 14 * MIN + 30_000, poolId: "generate-image" };
  stub(() => json(429, body, { "Retry-After": "8071" }));
  const { seen, handlers } = recorder();
  const init = { method: "POST", body: "{}" };
  const res = await chargeFetch("/api/generate", init, handlers);
  assert.deepEqual(calls, [{ input: "/api/generate", init }]);
  assert.deepEqual(seen.outOfCharge, [[body, "2h 15m", null]]);
  assert.deepEqual(seen.insufficientCredits, []);
  assert.equal(res.status, 429);
  assert.equal(res.headers.get("Retry-After"), "8071");
  assert.equal(res.bodyUsed, false);
  assert.deepEqual(await res.json(), body);
});

for (const [ms, expected] of [[45 * MIN, "45m"], [HOUR, "1h"], [1, "1m"], [25 * HOUR, "25h"]]) {
  test(`429 out_of_charge with retryAfterMs ${ms}: "${expected}"`, async () => {
    stub(() => json(429, { error: "out_of_charge", retryAfterMs: ms, poolId: "p" }));
    const { seen, handlers } = recorder();
    await chargeFetch("/x", undefined, handlers);
    assert.equal(seen.outOfCharge.length, 1);
    assert.equal(seen.outOfCharge[0][1], expected);
  });
}

test("402 insufficient_credits: onInsufficientCredits(body, null); the Response is returned unread", async () => {
  const body = { error: "insufficient_credits", poolId: "credits", availableBalance: 12, required: 20 };
  stub(() => json(402, body));
  const { seen, handlers } = recorder();
  const res = await chargeFetch("/v1/images", { method: "POST" }, handlers);
  assert.deepEqual(seen.insufficientCredits, [[body, null]]);
  assert.deepEqual(seen.outOfCharge, []);
  assert.equal(res.status, 402);
  assert.equal(await res.text(), JSON.stringify(body));
});

const noCallback = [
  ["429 with another JSON error", () => json(429, { error: "too_many_requests" })],
  ["429 with a JSON array", () => json(429, [{ error: "out_of_charge" }])],
  ["429 with JSON null", () => json(429, null)],
  ["429 that is not JSON (nginx's limit_req page)", () =>
    new Response("<html><body>429 Too Many Requests</body></html>", { status: 429, headers: { "Content-Type": "text/html" } })],
  ["429 without a body", () => new Response(null, { status: 429 })],
  ["402 with another JSON error", () => json(402, { error: "payment_required" })],
  ["402 that says out_of_charge", () => json(402, { error: "out_of_charge", retryAfterMs: 1 })],
  ["429 that says insufficient_credits", () => json(429, { error: "insufficient_credits" })],
  ["503 service_unavailable", () => json(503, { error: "service_unavailable" })],
  ["200", () => json(200, { ok: true })],
];

for (const [name, make] of noCallback) {
  test(`${name}: no callback, no throw, the Response returned with its body`, async () => {
    const expected = await make().text();
    stub(make);
    const { seen, handlers } = recorder();
    const res = await chargeFetch("/api/x", undefined, handlers);
    assert.deepEqual(seen, { outOfCharge: [], insufficientCredits: [] });
    assert.equal(res.bodyUsed, false);
    assert.equal(await res.text(), expected);
  });
}

test("the very Response that fetch resolved to is returned", async () => {
  let made;
  stub(() => (made = json(429, { error: "out_of_charge", retryAfterMs: 1000, poolId: "p" })));
  const res = await chargeFetch("/x", undefined, {});
  assert.equal(res, made);
  assert.equal(res.bodyUsed, false);
});

test("without handlers (or with only one) a denial is just returned", async () => {
  stub(() => json(429, { error: "out_of_charge", retryAfterMs: 1000, poolId: "p" }));
  assert.equal((await chargeFetch("/x")).status, 429);
  assert.equal((await chargeFetch("/x", {}, { onInsufficientCredits: () => assert.fail("wrong callback") })).status, 429);
  stub(() => json(402, { error: "insufficient_credits", poolId: "c", availableBalance: 0, required: 1 }));
  assert.equal((await chargeFetch("/x", {}, { onOutOfCharge: () => assert.fail("wrong callback") })).status, 402);
});

test("a network failure rejects as fetch does", async () => {
  globalThis.fetch = async () => {
    throw new TypeError("fetch failed");
  };
  await assert.rejects(chargeFetch("/x", undefined, recorder().handlers), { name: "TypeError", message: "fetch failed" });
});

test("createChargeFetch binds the callbacks once", async () => {
  stub(() => json(429, { error: "out_of_charge", retryAfterMs: 45 * MIN, poolId: "p" }));
  const { seen, handlers } = recorder();
  const fetchCharged = createChargeFetch(handlers);
  const res = await fetchCharged("/api/generate", { method: "POST" });
  assert.equal(res.status, 429);
  assert.deepEqual(calls[0], { input: "/api/generate", init: { method: "POST" } });
  assert.deepEqual(seen.outOfCharge, [[{ error: "out_of_charge", retryAfterMs: 45 * MIN, poolId: "p" }, "45m", null]]);
});

// --------------------------------------------------------------------------------------------
// upgradeUrl (docs/http.md, "Where to upgrade"): the callbacks' last argument

test("a used-up period pool's 429 hands its upgradeUrl to onOutOfCharge", async () => {
  const body = { error: "out_of_charge", retryAfterMs: 14 * HOUR, poolId: "generations", upgradeUrl: "/pricing#pro" };
  stub(() => json(429, body));
  const { seen, handlers } = recorder();
  const res = await chargeFetch("/api/generate", { method: "POST" }, handlers);
  assert.deepEqual(seen.outOfCharge, [[body, "14h", "/pricing#pro"]]);
  assert.deepEqual(seen.insufficientCredits, []);
  assert.equal(res.bodyUsed, false);
});

test("a 402 hands its upgradeUrl to onInsufficientCredits", async () => {
  const body = {
    error: "insufficient_credits", poolId: "credits", availableBalance: 0, required: 5,
    upgradeUrl: "https://shop.example.com/pricing?from=gate&x=%2F#credits",
  };
  stub(() => json(402, body));
  const { seen, handlers } = recorder();
  await createChargeFetch(handlers)("/v1/images", { method: "POST" });
  assert.deepEqual(seen.insufficientCredits, [[body, "https://shop.example.com/pricing?from=gate&x=%2F#credits"]]);
});

// What the responder's config would refuse is never handed on as a link (the body still is).
const notLinks = [
  "javascript:alert(1)", "//evil.example/pricing", "/\\evil.example", "https://", "https:///x", "HTTPS://x", "ftp://x/y",
  "pricing", "", "/a b", '/a"b', "/a<b", "/é", 42, null, ["/pricing"], { href: "/pricing" },
];

for (const upgradeUrl of notLinks) {
  test(`an upgradeUrl of ${JSON.stringify(upgradeUrl)} is handed on as null`, async () => {
    const { seen, handlers } = recorder();
    stub(() => json(429, { error: "out_of_charge", retryAfterMs: 1000, poolId: "p", upgradeUrl }));
    await chargeFetch("/x", undefined, handlers);
    stub(() => json(402, { error: "insufficient_credits", poolId: "c", availableBalance: 0, required: 1, upgradeUrl }));
    await chargeFetch("/x", undefined, handlers);
    assert.equal(seen.outOfCharge.length, 1);
    assert.equal(seen.outOfCharge[0][2], null);
    assert.deepEqual(seen.outOfCharge[0][0].upgradeUrl, upgradeUrl);
    assert.deepEqual(seen.insufficientCredits.map((args) => args[1]), [null]);
  });
}

for (const upgradeUrl of ["/", "/pricing", "/billing?plan=pro&from=gate#checkout", "https://shop.example.com", "http://[::1]:8080/p"]) {
  test(`an upgradeUrl of ${JSON.stringify(upgradeUrl)} is handed on as it is`, async () => {
    const { seen, handlers } = recorder();
    stub(() => json(429, { error: "out_of_charge", retryAfterMs: 1000, poolId: "p", upgradeUrl }));
    await chargeFetch("/x", undefined, handlers);
    assert.equal(seen.outOfCharge[0][2], upgradeUrl);
  });
}
