// api.js - the dashboard's calls to px-gateway, all with the viewer's token.
//
// The token is asked for once and kept in sessionStorage: it lives as long as the tab and
// never reaches localStorage or a cookie (so no other tab or later visit gets it, and the
// gateway never sees it unless this code sends it). Every call sends it as a Bearer header;
// an answer 401 means it is wrong or was withdrawn, so it is forgotten and the caller shows
// the form again (AuthError).

const TOKEN_KEY = "phuxanh.viewerToken";
// A call that takes longer than this is abandoned (and retried by whoever asked): the
// gateway answers from memory or from the services within a few seconds.
const CALL_TIMEOUT_MS = 15000;

export class AuthError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export class CallError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return "";
  }
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage disabled: nothing was kept */
  }
}

export function authHeaders(extra) {
  return Object.assign({ Authorization: "Bearer " + getToken() }, extra || {});
}

async function request(url, init) {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), CALL_TIMEOUT_MS);
  let res;
  try {
    res = await fetch(url, Object.assign({ cache: "no-store", signal: ctrl.signal }, init));
  } catch (e) {
    throw new CallError(0, "unavailable",
                        e.name === "AbortError" ? "hết thời gian chờ" : "không kết nối được");
  } finally {
    clearTimeout(timer);
  }
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (res.status === 401 || res.status === 403) {
    if (res.status === 401) {
      clearToken();
    }
    throw new AuthError(res.status, (body && body.message) || "");
  }
  if (!res.ok) {
    throw new CallError(res.status, (body && body.code) || "unknown",
                        (body && body.message) || "HTTP " + res.status);
  }
  return body || {};
}

// GET a /v1/... route; params are query parameters.
export function getJSON(path, params) {
  const q = new URLSearchParams(params || {}).toString();
  return request(path + (q ? "?" + q : ""), { headers: authHeaders() });
}

// A Connect unary call in JSON: service is "phuxanh.activation.v1.ActivationService".
export function connect(service, method, message) {
  return request("/" + service + "/" + method, {
    method: "POST",
    headers: authHeaders({ "Content-Type": "application/json" }),
    body: JSON.stringify(message || {}),
  });
}

export const ACTIVATION = "phuxanh.activation.v1.ActivationService";
export const ROSTER = "phuxanh.roster.v1.RosterService";
