// The API as the console calls it: same origin, the signed-in bearer token from sessionStorage
// (never a URL or localStorage), problem+json turned into readable errors.

const tokenKey = 'orderly.console.token';

export function token() { return sessionStorage.getItem(tokenKey); }
export function signIn(value) { sessionStorage.setItem(tokenKey, value.trim()); }
export function signOut() { sessionStorage.removeItem(tokenKey); }

/// The token's claims (role, subject, expiry) for showing the right pages; the API checks the
/// signature and the role on every call, so nothing here is trusted.
export function claims() {
  const value = token();
  if (!value) return null;
  try {
    const part = value.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const json = JSON.parse(atob(part + '='.repeat((4 - part.length % 4) % 4)));
    return { role: String(json.role ?? ''), subject: String(json.sub ?? ''), expires: json.exp ? new Date(json.exp * 1000) : null };
  } catch {
    return null;
  }
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.type = problem?.type;
  }
}

export function headers(extra = {}) {
  const value = token();
  return value ? { Authorization: `Bearer ${value}`, ...extra } : extra;
}

export async function call(method, path, { query, body, signal } = {}) {
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(name, value);
  }
  const init = { method, headers: headers(body === undefined ? {} : { 'Content-Type': 'application/json' }), signal };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(url, init);
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (!response.ok) throw new ApiError(response.status, json);
  return json;
}

export const get = (path, query, signal) => call('GET', path, { query, signal });
export const post = (path, body) => call('POST', path, { body });
