// ChargeGate — charge-fetch.js: fetch() for front ends behind a ChargeGate, with callbacks for
// its denials. A dependency-free ES module; nginx serves it at /charge-fetch.js
// (charge-gate-fetch.conf).
//
//     <script type="module">
//       import { chargeFetch } from "/charge-fetch.js";
//       const res = await chargeFetch("/api/generate", { method: "POST", body }, {
//         onOutOfCharge: (body, retry, upgradeUrl) => show(`Out of charges for ${body.poolId}. Recharges in ${retry}.`, upgradeUrl),
//         onInsufficientCredits: (body, upgradeUrl) => show(`${body.availableBalance} credits left, ${body.required} needed.`, upgradeUrl),
//       });
//       if (res.ok) { ... }   // the Response is always returned, its body unread
//     </script>
//
// The same behaviour as the next-charge library's `useChargeFetch` (client side), for the
// answers of README "HTTP answers":
// - 429 {"error":"out_of_charge","retryAfterMs":N,"poolId":"ID"}: onOutOfCharge(body, retry,
//   upgradeUrl), retry being the human wait ("45m", "2h 15m"; see retryString);
// - 402 {"error":"insufficient_credits","poolId","availableBalance","required"}:
//   onInsufficientCredits(body, upgradeUrl).
// upgradeUrl is the body's "upgradeUrl" (docs/http.md, "Where to upgrade": a used-up period
// pool's 429 and a 402 carry it when the config names one), a string to link an "Upgrade"
// button to, or null: none in the body (a refilling pool's 429: waiting helps), or not a plain
// "/path" or http(s) URL (so it is always safe as an href).
// Anything else (other statuses, other errors, a body that is not JSON, such as nginx's own
// HTML 429 of limit_req) calls nothing and throws nothing. The callbacks are called once, before
// the Response is returned; an exception thrown by a callback is the caller's and propagates. A
// network failure rejects exactly as fetch() does.
//
// Plans and billing periods (README "Plans and periods"):
// - chargeUsage() reads GET /api/usage as JSON: the subject's `plan` ({id, label, source}, or
//   null without plans), `upgradeUrl` (where the subject upgrades, or null) and the pools, each
//   with `period`, `periodStart`, `resetsAt` (null for a pool without a period), `resets`, the
//   human reset phrase ("resets Dec 1", "resets in 3h"; see resetString), as the usage page
//   writes it, and `upgradeUrl` (null unless the pool is used up and an upgrade would help: the
//   pools the usage page shows an "Upgrade" link on).
// - A period pool's denial is the ordinary 429 above; its retryAfterMs runs to the period's
//   end, so a month can be "400h" as a retry string:
//   `resetString(Date.now() + body.retryAfterMs)` reads "resets Dec 1" instead.

/**
 * The reference library's human retry string: whole minutes, rounded up; under an hour "45m",
 * then "2h 15m", or "1h" when the minutes are zero; no days ("25h"). 0 (or a negative or
 * missing value) is "0m". The same function as `UsagePage.retryString(ms:)` in the responder.
 * @param {number} ms
 * @returns {string}
 */
export function retryString(ms) {
  let n = Number(ms);
  if (!Number.isFinite(n) || n < 0) n = 0;
  const minutes = Math.ceil(n / 60000);
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return rest === 0 ? `${hours}h` : `${hours}h ${rest}m`;
}

const DAY_MS = 86_400_000;
// The usage page's range of dates (the years 1970-9999): both clamped to it, as the page does.
const LAST_MS = 253_402_300_799_999;
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/**
 * When a period pool's allowance comes back, for people; the same function as
 * `UsagePage.resetString(at:now:)` in the responder (the usage page), tested with the same table:
 * more than 24 h ahead, the UTC date of the reset, "resets Dec 1", with the year when it is not
 * now's ("resets Jan 1, 2026"); 24 h or less, the wait as a retry string, "resets in 3h",
 * "resets in 25m", "resets in 2h 15m"; at or before `now`, "resets now" (a stale reading).
 * null when `resetsAt` is missing or not a number (a pool without a period).
 * @param {number} resetsAt epoch ms (a pool's `resetsAt`)
 * @param {number} [now] epoch ms; Date.now() when omitted
 * @returns {string | null}
 */
export function resetString(resetsAt, now = Date.now()) {
  if (resetsAt === null || resetsAt === undefined || resetsAt === "") return null;
  const at = Number(resetsAt);
  if (!Number.isFinite(at)) return null;
  let from = Number(now);
  if (!Number.isFinite(from)) from = Date.now();
  const clamp = (ms) => Math.min(Math.max(0, ms), LAST_MS);
  const wait = clamp(at) - clamp(from);
  if (wait <= 0) return "resets now";
  if (wait <= DAY_MS) return `resets in ${retryString(wait)}`;
  const date = new Date(clamp(at));
  const text = `resets ${MONTHS[date.getUTCMonth()]} ${date.getUTCDate()}`;
  return date.getUTCFullYear() === new Date(clamp(from)).getUTCFullYear() ? text : `${text}, ${date.getUTCFullYear()}`;
}

/** What chargeUsage rejects with when the usage endpoint does not answer 200 with JSON. */
export class ChargeUsageError extends Error {
  /**
   * @param {string} message
   * @param {number} status the HTTP status
   * @param {unknown} body the parsed JSON body (`{"error": ...}`), or null when it was not JSON
   */
  constructor(message, status, body) {
    super(message);
    this.name = "ChargeUsageError";
    this.status = status;
    this.body = body;
  }
}

const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);

// What the responder's config accepts as an upgradeUrl: a "/path" (not "//host") or an http(s)
// URL with a host, URL characters only (no quotes, spaces, "<", ">" or "\", which a browser
// reads as "/" in "/\host").
const UPGRADE_URL = /^(?:\/(?!\/)|https?:\/\/(?=[A-Za-z0-9\-._~:[\]@!$&()*+,;=%]))[A-Za-z0-9\-._~:/?#[\]@!$&()*+,;=%]*$/;

/**
 * A body's or a pool's `upgradeUrl`, or null when it has none or it is not such a URL.
 * @param {unknown} v
 * @returns {string | null}
 */
const upgradeUrlOf = (v) => (typeof v === "string" && UPGRADE_URL.test(v) ? v : null);

/**
 * GET the usage JSON (`/api/usage` unless `input` names another path) for a front end:
 * `{ ...the JSON, plan, upgradeUrl, pools }` where
 * - `plan` is `{id, label, source}` (source "stored" | "nginx" | "default"), or null when the
 *   gate has no plans;
 * - `upgradeUrl` is where the subject upgrades (its plan's, else the config's), or null;
 * - `pools` are the JSON's STATE objects, each with `period` ("day" | "week" | "month"),
 *   `periodStart` and `resetsAt` (epoch ms) set to null for a pool without a period,
 *   `resets`: resetString(resetsAt, now) (null without a period; given for a full pool too),
 *   and `upgradeUrl`: a used-up per-subject period or credits pool's, else null (show an
 *   "Upgrade" link where it is not null).
 * `Accept: application/json` is sent unless `init.headers` names an Accept. Rejects with a
 * ChargeUsageError (`status`, `body`) on any other answer than a 200 with a JSON object (a
 * 503 while the store is down, a 401/403 on `?subject=` without the admin token), and as
 * fetch() does on a network failure.
 * @param {RequestInfo | URL} [input]
 * @param {RequestInit} [init]
 * @param {{now?: () => number}} [options] the clock for `resets` (Date.now by default)
 * @returns {Promise<{plan: {id: string, label: string, source: string} | null, upgradeUrl: string | null, pools: object[]}>}
 */
export async function chargeUsage(input = "/api/usage", init = {}, { now = Date.now } = {}) {
  const headers = new Headers(init?.headers);
  if (!headers.has("Accept")) headers.set("Accept", "application/json");
  const response = await fetch(input, { ...init, headers });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (response.status !== 200 || body === null || typeof body !== "object" || Array.isArray(body)) {
    const error = body && typeof body === "object" && typeof body.error === "string" ? `: ${body.error}` : "";
    throw new ChargeUsageError(`usage: HTTP ${response.status}${error}`, response.status, body);
  }
  const at = now();
  const plan =
    body.plan && typeof body.plan === "object" && !Array.isArray(body.plan)
      ? { id: body.plan.id, label: body.plan.label, source: body.plan.source }
      : null;
  const pools = (Array.isArray(body.pools) ? body.pools : []).map((pool) => {
    const period = typeof pool?.period === "string" ? pool.period : null;
    const resetsAt = period === null ? null : num(pool.resetsAt);
    return {
      ...pool,
      period,
      periodStart: period === null ? null : num(pool.periodStart),
      resetsAt,
      resets: resetString(resetsAt, at),
      upgradeUrl: upgradeUrlOf(pool?.upgradeUrl),
    };
  });
  return { ...body, plan, upgradeUrl: upgradeUrlOf(body.upgradeUrl), pools };
}

/**
 * fetch(input, init), then the matching callback for a ChargeGate denial. Resolves to the
 * original Response, whose body is left unread (the JSON is read from a clone). Each callback's
 * last argument is the body's `upgradeUrl` (where to upgrade), or null when it has none.
 * @param {RequestInfo | URL} input
 * @param {RequestInit} [init]
 * @param {{onOutOfCharge?: (body: object, retry: string, upgradeUrl: string | null) => void,
 *          onInsufficientCredits?: (body: object, upgradeUrl: string | null) => void}} [handlers]
 * @returns {Promise<Response>}
 */
export async function chargeFetch(input, init, { onOutOfCharge, onInsufficientCredits } = {}) {
  const response = await fetch(input, init);
  if (response.status !== 429 && response.status !== 402) return response;
  let body;
  try {
    body = await response.clone().json();
  } catch {
    return response; // not JSON (or no body): not ours
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) return response;
  if (response.status === 429 && body.error === "out_of_charge") {
    if (typeof onOutOfCharge === "function") onOutOfCharge(body, retryString(body.retryAfterMs), upgradeUrlOf(body.upgradeUrl));
  } else if (response.status === 402 && body.error === "insufficient_credits") {
    if (typeof onInsufficientCredits === "function") onInsufficientCredits(body, upgradeUrlOf(body.upgradeUrl));
  }
  return response;
}

/**
 * chargeFetch with the callbacks bound once, like next-charge's `useChargeFetch({...})`:
 * `const fetchCharged = createChargeFetch({ onOutOfCharge }); await fetchCharged(url, init);`
 * @param {{onOutOfCharge?: Function, onInsufficientCredits?: Function}} [handlers]
 * @returns {(input: RequestInfo | URL, init?: RequestInit) => Promise<Response>}
 */
export function createChargeFetch(handlers = {}) {
  return (input, init) => chargeFetch(input, init, handlers);
}
