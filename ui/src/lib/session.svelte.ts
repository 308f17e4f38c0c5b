// Who is logged in and what the server lets them do. `allowed` comes from /api/auth/me (the
// route table the server enforces); menus and buttons consult it, the server decides.
import { api, ApiError, setSessionExpiredHandler } from '../api/client';
import type { App, Me } from '../api/types';
import { location } from './router.svelte';

const LAST_APP = 'unmogrowp.lastApp';
/** Set while logged in, so a fresh page load without a session skips the refresh attempt. */
const SESSION = 'unmogrowp.session';

class Session {
  user = $state<Me | null>(null);
  apps = $state<App[]>([]);
  /** Set when a session ended on its own (shown on the login page). */
  notice = $state('');
  ready = $state(false);

  constructor() {
    setSessionExpiredHandler(() => this.ended('Your session has expired. Log in again.'));
  }

  can(route: string): boolean {
    return this.user?.allowed.includes(route) ?? false;
  }

  get isAdmin(): boolean {
    return this.user?.roles.includes('admin') ?? false;
  }

  /** On page load: resume from the refresh cookie if there is one. */
  async start(): Promise<void> {
    if (localStorage.getItem(SESSION) && (await api.resume())) {
      try {
        await this.load();
      } catch {
        this.user = null;
      }
    }
    this.ready = true;
  }

  async login(email: string, password: string): Promise<void> {
    await api.login(email, password);
    this.notice = '';
    await this.load();
  }

  async load(): Promise<void> {
    const user = await api.me();
    const apps = user.allowed.includes('GET /api/apps') ? (await api.apps()).apps : [];
    // Both at once: pages render as soon as `user` is set and expect the app list with it.
    this.apps = apps;
    this.user = user;
    localStorage.setItem(SESSION, '1');
  }

  async reloadApps(): Promise<void> {
    this.apps = (await api.apps()).apps;
  }

  async logout(): Promise<void> {
    try {
      await api.logout();
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
    }
    this.ended('');
  }

  ended(notice: string): void {
    localStorage.removeItem(SESSION);
    this.user = null;
    this.apps = [];
    this.notice = notice;
    location.go('/login');
  }

  /** The app to open: the one in the URL, the last one used, else the first allowed. */
  pickApp(fromUrl: string | null): string | null {
    const ids = this.apps.map((a) => a.id);
    if (fromUrl && ids.includes(fromUrl)) return fromUrl;
    const last = localStorage.getItem(LAST_APP);
    if (last && ids.includes(last)) return last;
    return ids[0] ?? null;
  }

  remember(app: string): void {
    localStorage.setItem(LAST_APP, app);
  }
}

export const session = new Session();
