// Client-side routes: real paths (/dashboard, /sql, …) that the server answers with
// index.html, with the page's state (app, range, query) in the query string so a link or a
// reload shows the same screen and back/forward work.

export const routes = {
  '/login': 'Log in',
  '/dashboard': 'Dashboard',
  '/attribution': 'Attribution',
  '/sql': 'SQL console',
  '/apps': 'Apps and keys',
  '/admin/users': 'Users',
  '/admin/audit': 'Audit log',
  '/admin/cluster': 'Cluster',
} as const;
export type Route = keyof typeof routes;

class Location {
  path = $state(window.location.pathname);
  search = $state(window.location.search);

  constructor() {
    window.addEventListener('popstate', () => this.sync());
  }

  private sync(): void {
    this.path = window.location.pathname;
    this.search = window.location.search;
  }

  get params(): URLSearchParams {
    return new URLSearchParams(this.search);
  }

  /** Goes to `path` (with `query`), adding a history entry. */
  go(path: string, query: Record<string, string> = {}, replace = false): void {
    const qs = new URLSearchParams(query).toString();
    const target = qs ? `${path}?${qs}` : path;
    if (target === window.location.pathname + window.location.search) return;
    if (replace) history.replaceState(null, '', target);
    else history.pushState(null, '', target);
    this.sync();
  }

  /** Updates the query string of the current page in place (no new history entry). */
  setParams(values: Record<string, string | null>): void {
    const p = this.params;
    for (const [k, v] of Object.entries(values)) {
      if (v === null || v === '') p.delete(k);
      else p.set(k, v);
    }
    this.go(this.path, Object.fromEntries(p), true);
  }
}

export const location = new Location();
