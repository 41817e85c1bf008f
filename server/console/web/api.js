// The console's only way to the server: the same HTTP API rsignctl uses,
// through the session cookie (HttpOnly: this script never sees it). Every
// request that may change state carries the session's CSRF token, read
// from its cookie; no token of any kind is kept in localStorage or
// sessionStorage. A failed call throws ApiError with the API's reason.

export class ApiError extends Error {
  constructor(status, body) {
    const reason = (body && body.reason) || 'httpError';
    const msg = (body && body.message) || ('HTTP ' + status);
    super(reason + ': ' + msg);
    this.status = status;
    this.reason = reason;
    this.apiMessage = msg;
  }
}

function csrfToken() {
  for (const part of document.cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === '__Host-rsign-csrf') return v.join('=');
  }
  return '';
}

export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrfToken();
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch('/api/v1' + path, init);
  } catch (e) {
    throw new ApiError(0, { reason: 'networkError', message: 'rsignd cannot be reached: ' + e.message });
  }
  let json = null;
  try { json = await resp.json(); } catch (e) { json = null; }
  if (!resp.ok) {
    const err = new ApiError(resp.status, json);
    if (resp.status === 401 && onSignedOut) onSignedOut(err);
    throw err;
  }
  return json;
}

let onSignedOut = null;
// fn(err) runs when any call finds the session gone (401).
export function whenSignedOut(fn) { onSignedOut = fn; }

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? '?' + s : '';
}
