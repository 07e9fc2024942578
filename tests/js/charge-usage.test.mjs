// nginx/charge-fetch.js, plans and billing periods: resetString, chargeUsage and a
// period pool's denial, with Node's built-in test runner: node --test tests/js/
//
// The module is loaded from its source text through a data: URL, as in charge-fetch.test.mjs.
// Every clock is injected: the `now` argument of resetString, the `now` option of chargeUsage.

import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";

const source = await readFile(new URL("../../nginx/charge-fetch.js", import.meta.url), "utf8");
const { chargeFetch, chargeUsage, ChargeUsageError, resetString, retryString } = await import(
  "data:text/javascript;base64," + Buffer.from(source).toString("base64")
);

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

const DEC1 = Date.UTC(2025, 11, 1); // 2025-12-01 00:00 UTC
const JAN1 = Date.UTC(2026, 0, 1);
const NOV24 = Date.UTC(2025, 10, 24); // a Monday
const NOV14_NOON = Date.UTC(2025, 10, 14, 12);
const NOV19 = Date.UTC(2025, 10, 19, 10); // a Wednesday
const NOV30_EVENING = Date.UTC(2025, 10, 30, 21);
const DEC20 = Date.UTC(2025, 11, 20, 8);
const DEC31_LATE = Date.UTC(2025, 11, 31, 22);
const MAR1_2024 = Date.UTC(2024, 2, 1);

// The same table as Tests/ChargeGateCoreTests/Rendering/UsagePageTests.swift (resetString).
const resetTable = [
  [DEC1, NOV14_NOON, "resets Dec 1"],
  [DEC1, NOV30_EVENING, "resets in 3h"],
  [DEC1, DEC1 - 25 * MIN, "resets in 25m"],
  [DEC1, DEC1 - 2 * HOUR - 14 * MIN - 1, "resets in 2h 15m"],
  [DEC1, DEC1 - 1, "resets in 1m"],
  [DEC1, DEC1 - DAY, "resets in 24h"], // exactly 24 h: still a wait
  [DEC1, DEC1 - DAY + 1, "resets in 24h"],
  [DEC1, DEC1 - DAY - 1, "resets Dec 1"], // more than 24 h: the date
  [NOV24, NOV19, "resets Nov 24"],
  [JAN1, DEC20, "resets Jan 1, 2026"], // another year: with the year
  [JAN1, DEC31_LATE, "resets in 2h"],
  [MAR1_2024, MAR1_2024 - 3 * DAY, "resets Mar 1"], // 2024, a leap year
  [MAR1_2024 - 1, MAR1_2024 - 3 * DAY, "resets Feb 29"], // the date of the reset's own moment
  [DEC1, DEC1, "resets now"],
  [DEC1, DEC1 + 5, "resets now"],
];

for (const [resetsAt, now, expected] of resetTable) {
  test(`resetString(${new Date(resetsAt).toISOString()}, ${new Date(now).toISOString()}) is ${JSON.stringify(expected)}`, () => {
    assert.equal(resetString(resetsAt, now), expected);
  });
}

test("resetString of a pool without a period (or a broken value) is null", () => {
  for (const v of [undefined, null, "", NaN, "x", Infinity, -Infinity, {}]) {
    assert.equal(resetString(v, NOV14_NOON), null, String(v));
  }
  assert.equal(resetString(String(DEC1), NOV14_NOON), "resets Dec 1"); // a numeric string
});

test("resetString reads the clock when no now is given", (t) => {
  t.mock.method(Date, "now", () => NOV30_EVENING);
  assert.equal(resetString(DEC1), "resets in 3h");
  assert.equal(resetString(JAN1), "resets Jan 1, 2026");
});

test("resetString's wait is retryString's", () => {
  for (let ms = 1; ms <= DAY; ms += 7 * MIN + 13_001) assert.equal(resetString(DEC1, DEC1 - ms), `resets in ${retryString(ms)}`);
});

// --------------------------------------------------------------------------------------------
// chargeUsage against a stubbed fetch

const realFetch = globalThis.fetch;
let calls;

function stub(makeResponse) {
  globalThis.fetch = async (input, init) => {
    calls.push({ input, init });
    return makeResponse();
  };
}

const json = (status, body) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

beforeEach(() => {
  calls = [];
});
afterEach(() => {
  globalThis.fetch = realFetch;
});

// What the responder answers (docs/http.md, GET /api/usage) for a subject on the Pro plan: a
// monthly pool partly used, a daily meter, a bucket pool.
const MONTH_POOL = {
  id: "generations",
  label: "Generations",
  group: "",
  current: 97,
  max: 100,
  rechargeIntervalHours: null,
  nextRechargeAt: DEC1,
  fullAt: DEC1,
  availableBalance: 97,
  usedBalance: 3,
  balanceLimit: 100,
  period: "month",
  periodStart: Date.UTC(2025, 10, 1),
  resetsAt: DEC1,
  subject: "127.0.0.1",
};
const DAY_METER = {
  id: "api-calls",
  label: "api-calls",
  group: "",
  current: null,
  max: null,
  rechargeIntervalHours: null,
  nextRechargeAt: null,
  fullAt: null,
  availableBalance: null,
  usedBalance: 7,
  balanceLimit: null,
  period: "day",
  periodStart: Date.UTC(2025, 10, 30),
  resetsAt: DEC1,
  subject: "127.0.0.1",
};
const BUCKET = {
  id: "generate-image",
  label: "Image generation",
  group: "AI",
  current: 5,
  max: 5,
  rechargeIntervalHours: 2,
  nextRechargeAt: null,
  fullAt: null,
  availableBalance: 5,
  usedBalance: 0,
  balanceLimit: 5,
};
const USAGE = { plan: { id: "pro", label: "Pro", source: "stored" }, pools: [MONTH_POOL, DAY_METER, BUCKET] };

test("chargeUsage: the plan, and per pool period, periodStart, resetsAt and the reset phrase", async () => {
  stub(() => json(200, USAGE));
  const usage = await chargeUsage(undefined, undefined, { now: () => NOV30_EVENING });
  assert.equal(calls.length, 1);
  assert.equal(calls[0].input, "/api/usage");
  assert.equal(calls[0].init.headers.get("Accept"), "application/json");
  assert.deepEqual(usage.plan, { id: "pro", label: "Pro", source: "stored" });
  assert.equal(usage.upgradeUrl, null);
  assert.deepEqual(usage.pools, [
    { ...MONTH_POOL, resets: "resets in 3h", upgradeUrl: null },
    { ...DAY_METER, resets: "resets in 3h", upgradeUrl: null },
    { ...BUCKET, period: null, periodStart: null, resetsAt: null, resets: null, upgradeUrl: null },
  ]);
});

const clockTable = [
  [NOV14_NOON, "resets Dec 1"],
  [NOV30_EVENING, "resets in 3h"],
  [DEC1 - 25 * MIN, "resets in 25m"],
];

for (const [now, expected] of clockTable) {
  test(`chargeUsage with the clock at ${new Date(now).toISOString()}: ${JSON.stringify(expected)}`, async () => {
    stub(() => json(200, USAGE));
    const usage = await chargeUsage("/api/usage", {}, { now: () => now });
    assert.equal(usage.pools[0].resets, expected);
    assert.equal(usage.pools[0].resetsAt, DEC1);
    assert.equal(usage.pools[0].periodStart, Date.UTC(2025, 10, 1));
  });
}

test("chargeUsage across a year end: the year is named", async () => {
  const december = { ...MONTH_POOL, periodStart: DEC1, resetsAt: JAN1, nextRechargeAt: JAN1, fullAt: JAN1 };
  stub(() => json(200, { plan: USAGE.plan, pools: [december] }));
  const usage = await chargeUsage("/api/usage", {}, { now: () => DEC20 });
  assert.equal(usage.pools[0].resets, "resets Jan 1, 2026");
});

test("chargeUsage without plans: plan is null, the pools as they are", async () => {
  stub(() => json(200, { pools: [BUCKET] }));
  const usage = await chargeUsage("/api/usage", {}, { now: () => NOV14_NOON });
  assert.equal(usage.plan, null);
  assert.equal(usage.upgradeUrl, null);
  assert.deepEqual(usage.pools, [{ ...BUCKET, period: null, periodStart: null, resetsAt: null, resets: null, upgradeUrl: null }]);
});

test("chargeUsage uses Date.now when no clock is given", async (t) => {
  t.mock.method(Date, "now", () => NOV14_NOON);
  stub(() => json(200, USAGE));
  assert.equal((await chargeUsage()).pools[0].resets, "resets Dec 1");
});

test("chargeUsage keeps the caller's path, init and Accept", async () => {
  stub(() => json(200, USAGE));
  const signal = new AbortController().signal;
  const headers = { Authorization: "Bearer t", Accept: "application/json;q=1" };
  await chargeUsage("/gate/api/usage?subject=k1", { headers, signal });
  assert.equal(calls[0].input, "/gate/api/usage?subject=k1");
  assert.equal(calls[0].init.signal, signal);
  assert.equal(calls[0].init.headers.get("Authorization"), "Bearer t");
  assert.equal(calls[0].init.headers.get("Accept"), "application/json;q=1");
});

test("chargeUsage: where the subject upgrades, and upgradeUrl on the used-up pools that show an Upgrade link", async () => {
  // Free: the monthly allowance used up (with Free's URL, as the responder writes it), a bucket
  // that is empty too (no URL: it refills by itself).
  const usedUp = { ...MONTH_POOL, current: 0, max: 5, availableBalance: 0, usedBalance: 5, balanceLimit: 5, upgradeUrl: "/pricing#pro" };
  const empty = { ...BUCKET, current: 0, availableBalance: 0, usedBalance: 5, nextRechargeAt: DEC1, fullAt: DEC1 };
  stub(() => json(200, { plan: { id: "free", label: "Free", source: "default" }, upgradeUrl: "/pricing#pro", pools: [usedUp, empty] }));
  const usage = await chargeUsage("/api/usage", {}, { now: () => NOV30_EVENING });
  assert.equal(usage.upgradeUrl, "/pricing#pro");
  assert.deepEqual(
    usage.pools.map((pool) => [pool.id, pool.upgradeUrl]),
    [["generations", "/pricing#pro"], ["generate-image", null]],
  );
  assert.equal(usage.pools[0].resets, "resets in 3h");
});

test("chargeUsage: an upgradeUrl that is not a plain path or http(s) URL is null", async () => {
  const pool = { ...MONTH_POOL, upgradeUrl: "javascript:alert(1)" };
  stub(() => json(200, { plan: USAGE.plan, upgradeUrl: "//evil.example", pools: [pool, { ...BUCKET, upgradeUrl: 7 }] }));
  const usage = await chargeUsage("/api/usage", {}, { now: () => NOV30_EVENING });
  assert.equal(usage.upgradeUrl, null);
  assert.deepEqual(usage.pools.map((p) => p.upgradeUrl), [null, null]);
});

const failures = [
  ["503 service_unavailable", () => json(503, { error: "service_unavailable" }), 503, { error: "service_unavailable" },
    /HTTP 503: service_unavailable/],
  ["401 unauthorized (?subject= without the token)", () => json(401, { error: "unauthorized" }), 401, { error: "unauthorized" },
    /HTTP 401: unauthorized/],
  ["200 that is not JSON (a proxy's page)", () => new Response("<html></html>", { status: 200 }), 200, null, /HTTP 200/],
  ["200 with a JSON array", () => json(200, []), 200, [], /HTTP 200/],
];

for (const [name, make, status, body, message] of failures) {
  test(`chargeUsage rejects on a ${name}`, async () => {
    stub(make);
    await assert.rejects(chargeUsage(), (e) => {
      assert.ok(e instanceof ChargeUsageError);
      assert.equal(e.name, "ChargeUsageError");
      assert.equal(e.status, status);
      assert.deepEqual(e.body, body);
      assert.match(e.message, message);
      return true;
    });
  });
}

test("chargeUsage: a network failure rejects as fetch does", async () => {
  globalThis.fetch = async () => {
    throw new TypeError("fetch failed");
  };
  await assert.rejects(chargeUsage(), { name: "TypeError", message: "fetch failed" });
});

// --------------------------------------------------------------------------------------------
// a period pool's denial: the ordinary 429

test("a period pool's 429 calls onOutOfCharge; resetString(now + retryAfterMs) names the reset", async () => {
  const now = NOV14_NOON;
  const body = { error: "out_of_charge", retryAfterMs: DEC1 - now, poolId: "generations" };
  stub(() => json(429, body));
  const seen = [];
  const res = await chargeFetch("/api/generate", { method: "POST" }, { onOutOfCharge: (...args) => seen.push(args) });
  assert.equal(res.status, 429);
  assert.deepEqual(seen, [[body, "396h", null]]);
  assert.equal(resetString(now + body.retryAfterMs, now), "resets Dec 1");
  assert.equal(resetString(NOV30_EVENING + (DEC1 - NOV30_EVENING), NOV30_EVENING), "resets in 3h");
});
