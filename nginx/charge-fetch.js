// ChargeGate — charge-fetch.js: fetch() for front ends behind a ChargeGate, with callbacks for
// its denials. A dependency-free ES module; nginx serves it at /charge-fetch.js
// (charge-gate-fetch.conf).
//
//     <script type="module">
//       import { chargeFetch } from "/charge-fetch.js";
//       const res = await chargeFetch("/api/generate", { method: "POST", body }, {
//         onOutOfCharge: (body, retry) => show(`Out of charges for ${body.poolId}. Recharges in ${retry}.`),
//         onInsufficientCredits: (body) => show(`${body.availableBalance} credits left, ${body.required} needed.`),
//       });
//       if (res.ok) { ... }   // the Response is always returned, its body unread
//     </script>
//
// The same behaviour as the next-charge library's `useChargeFetch` (client side), for the
// answers of README "HTTP answers":
// - 429 {"error":"out_of_charge","retryAfterMs":N,"poolId":"ID"}: onOutOfCharge(body, retry),
//   retry being the human wait ("45m", "2h 15m"; see retryString);
// - 402 {"error":"insufficient_credits","poolId","availableBalance","required"}:
//   onInsufficientCredits(body).
// Anything else (other statuses, other errors, a body that is not JSON, such as nginx's own
// HTML 429 of limit_req) calls nothing and throws nothing. The callbacks are called once, before
// the Response is returned; an exception thrown by a callback is the caller's and propagates. A
// network failure rejects exactly as fetch() does.

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

/**
 * fetch(input, init), then the matching callback for a ChargeGate denial. Resolves to the
 * original Response, whose body is left unread (the JSON is read from a clone).
 * @param {RequestInfo | URL} input
 * @param {RequestInit} [init]
 * @param {{onOutOfCharge?: (body: object, retry: string) => void,
 *          onInsufficientCredits?: (body: object) => void}} [handlers]
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
    if (typeof onOutOfCharge === "function") onOutOfCharge(body, retryString(body.retryAfterMs));
  } else if (response.status === 402 && body.error === "insufficient_credits") {
    if (typeof onInsufficientCredits === "function") onInsufficientCredits(body);
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
