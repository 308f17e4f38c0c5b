// The one typed API client of the dashboard. Every call names an entry of endpoints.json
// ("METHOD /path"), which the server's tests check against /api/openapi.json, so a renamed
// or removed route fails the build of the server, not a user's click.
//
// Tokens: the access token lives only in memory (this module); the refresh token is an
// HttpOnly, SameSite=Strict cookie the page's script can never read (the login and refresh
// calls send `X-Session-Cookie: 1`). The token is renewed 30 s before it expires; a 401
// (token revoked, clock skew) refreshes once and retries; a failed refresh ends the session
// (the app goes back to the login page).
import endpoints from './endpoints.json';
import type * as T from './types';

export type Endpoint = keyof typeof endpoints;
type Query = Record<string, string | number | boolean | undefined | null>;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterSecs: number | null = null,
  ) {
    super(message);
  }
  /** A sentence for people: the server's message, and what to do for the common cases. */
  get friendly(): string {
    if (this.status === 0) return 'The appliance cannot be reached. Is it running?';
    if (this.status === 429) {
      const wait = this.retryAfterSecs ? ` Try again in ${this.retryAfterSecs} s.` : ' Try again shortly.';
      return `Too many attempts.${wait}`;
    }
    return this.message;
  }
}

interface CallOptions {
  params?: Record<string, string>;
  query?: Query;
  body?: unknown;
  signal?: AbortSignal;
  /** Answer as a Blob (downloads) instead of JSON. */
  blob?: boolean;
  /** Skip the refresh-and-retry on 401 (login, refresh itself). */
  noRetry?: boolean;
}

let accessToken: string | null = null;
let refreshing: Promise<boolean> | null = null;
let renewTimer: ReturnType<typeof setTimeout> | undefined;

/** Keeps the token for this session and renews it half a minute before it expires. */
function setToken(t: T.Tokens): void {
  accessToken = t.access_token;
  clearTimeout(renewTimer);
  renewTimer = setTimeout(() => void refresh(), Math.max(5, t.expires_in - 30) * 1000);
}

function dropToken(): void {
  accessToken = null;
  clearTimeout(renewTimer);
}
let onExpired: () => void = () => {};

/** Called when the session cannot be renewed (the app shows the login page). */
export function setSessionExpiredHandler(f: () => void): void {
  onExpired = f;
}

function url(ep: Endpoint, params: Record<string, string> = {}, query: Query = {}): [string, string] {
  const [method, template] = (endpoints[ep] as string).split(' ');
  const path = template.replace(/\{(\w+)\}/g, (_, k: string) => {
    if (!(k in params)) throw new Error(`missing path parameter ${k} of ${ep}`);
    return encodeURIComponent(params[k]);
  });
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') qs.set(k, String(v));
  const s = qs.toString();
  return [method, s ? `${path}?${s}` : path];
}

async function send(ep: Endpoint, o: CallOptions): Promise<Response> {
  const [method, target] = url(ep, o.params, o.query);
  const headers: Record<string, string> = { 'x-session-cookie': '1' };
  if (accessToken) headers.authorization = `Bearer ${accessToken}`;
  if (o.body !== undefined) headers['content-type'] = 'application/json';
  try {
    return await fetch(target, {
      method,
      headers,
      body: o.body === undefined ? undefined : JSON.stringify(o.body),
      signal: o.signal,
      credentials: 'same-origin',
    });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(0, 'unreachable', 'The appliance cannot be reached. Is it running?');
  }
}

async function errorOf(r: Response): Promise<ApiError> {
  let code = 'http_' + r.status;
  let message = r.statusText || `HTTP ${r.status}`;
  try {
    const b = (await r.json()) as T.ErrorBody;
    code = b.error.code;
    message = b.error.message;
  } catch {
    /* not our error shape (a proxy's page): keep the status line */
  }
  const ra = Number(r.headers.get('retry-after'));
  return new ApiError(r.status, code, message, Number.isFinite(ra) && ra > 0 ? ra : null);
}

async function refreshOnce(): Promise<boolean> {
  try {
    const r = await send('refresh', { noRetry: true });
    if (!r.ok) return false;
    setToken((await r.json()) as T.Tokens);
    return true;
  } catch {
    return false;
  }
}

/** Renews the access token from the refresh cookie; false when the session is over. One
 *  refresh at a time in this tab, and across this origin's tabs (Web Locks), so two tabs
 *  never present the same cookie at once. (The server also forgives a superseded token for
 *  a few seconds: an answer lost to a reload.) */
export function refresh(): Promise<boolean> {
  if (!refreshing) {
    const locks = navigator.locks;
    const locked = locks
      ? (async (): Promise<boolean> => await locks.request('unmogrowp-refresh', refreshOnce))()
      : refreshOnce();
    refreshing = locked.finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

export async function call<R>(ep: Endpoint, o: CallOptions = {}): Promise<R> {
  let r = await send(ep, o);
  if (r.status === 401 && !o.noRetry) {
    if (await refresh()) r = await send(ep, o);
    else {
      dropToken();
      onExpired();
    }
  }
  if (!r.ok) throw await errorOf(r);
  if (o.blob) return (await r.blob()) as R;
  // 204 (a revoked key, a deleted user) and other empty answers carry no JSON.
  const text = await r.text();
  return (text ? JSON.parse(text) : undefined) as R;
}

/** The range and app every dashboard call takes. */
export interface Scope {
  app_id: string;
  from: string;
  to: string;
}

type Opt = { signal?: AbortSignal };

export const api = {
  async login(email: string, password: string): Promise<void> {
    setToken(await call<T.Tokens>('login', { body: { email, password }, noRetry: true }));
  },
  /** Resumes a session from the refresh cookie (page reload); false if there is none. */
  resume: refresh,
  async logout(): Promise<void> {
    try {
      await call('logout', { body: {} });
    } finally {
      dropToken();
    }
  },
  me: (o: Opt = {}) => call<T.Me>('me', o),

  stats: (s: Scope, o: Opt = {}) => call<T.Stats>('stats', { query: { ...s }, ...o }),
  eventsOverTime: (s: Scope, interval: 'hour' | 'day', o: Opt = {}) =>
    call<T.EventsOverTime>('eventsOverTime', { query: { ...s, interval }, ...o }),
  platforms: (s: Scope, o: Opt = {}) => call<T.Rows<T.PlatformRow>>('platforms', { query: { ...s }, ...o }),
  topCampaigns: (s: Scope, limit: number, o: Opt = {}) =>
    call<T.Rows<T.CampaignRow>>('topCampaigns', { query: { ...s, limit }, ...o }),
  retention: (s: Scope, days: number, cohortEvent: string, o: Opt = {}) =>
    call<T.Retention>('retention', { query: { ...s, days, cohort_event: cohortEvent }, ...o }),
  funnel: (s: Scope, steps: string[], window: string, o: Opt = {}) =>
    call<T.Funnel>('funnel', { query: { ...s, steps: steps.join(','), window }, ...o }),

  attribution: (q: Query, o: Opt = {}) => call<T.AttributionReport>('attribution', { query: q, ...o }),
  fraud: (q: Query, o: Opt = {}) => call<T.FraudReport>('fraud', { query: q, ...o }),

  query: (sql: string, o: Opt & { timeout_ms?: number } = {}) =>
    call<T.QueryResult>('query', { body: { sql, format: 'json', timeout_ms: o.timeout_ms }, signal: o.signal }),
  queryDownload: (sql: string, format: 'csv' | 'parquet' | 'ndjson', o: Opt = {}) =>
    call<Blob>('query', { body: { sql, format }, blob: true, ...o }),

  apps: (o: Opt = {}) => call<{ apps: T.App[] }>('apps', o),
  createApp: (name: string, id?: string) => call<T.CreatedApp>('createApp', { body: id ? { name, id } : { name } }),
  patchApp: (id: string, patch: Partial<Pick<T.App, 'name' | 'allowed_origins' | 'strict_fields'>>) =>
    call<T.App>('patchApp', { params: { id }, body: patch }),
  keys: (id: string, o: Opt = {}) => call<{ keys: T.ApiKey[] }>('keys', { params: { id }, ...o }),
  createKey: (id: string) => call<T.CreatedKey>('createKey', { params: { id }, body: {} }),
  rotateKey: (id: string) => call<T.CreatedKey>('rotateKey', { params: { id }, body: {} }),
  revokeKey: (id: string, keyId: string) => call<unknown>('revokeKey', { params: { id, key_id: keyId } }),

  users: (o: Opt = {}) => call<{ users: T.User[] }>('users', o),
  createUser: (u: { email: string; password: string; name?: string; roles: T.Role[]; app_access: string[] }) =>
    call<T.User>('createUser', { body: u }),
  patchUser: (id: string, patch: Partial<{ name: string; roles: T.Role[]; permissions: string[]; app_access: string[]; disabled: boolean; password: string }>) =>
    call<T.User>('patchUser', { params: { id }, body: patch }),
  unlockUser: (id: string) => call<T.User>('unlockUser', { params: { id }, body: {} }),
  rotateSigningKey: () => call<{ rotated_at_ms: number; previous_key_valid_until_ms: number }>('rotateSigningKey', { body: {} }),
  cluster: (o: Opt = {}) => call<T.Cluster>('cluster', o),
  audit: (q: Query, o: Opt = {}) => call<T.AuditPage>('audit', { query: q, ...o }),
  auditVerify: (o: Opt = {}) => call<T.AuditVerify>('auditVerify', o),
};
