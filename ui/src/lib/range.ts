// Time ranges of the dashboard. Presets end at the end of the current UTC hour and span whole
// hours, so the server answers them from its hourly rollups; a custom range is whole UTC
// days. Days and hours are bucketed in UTC by the server and labelled so on screen; the
// viewer's local time is shown beside it.

export type Preset = '24h' | '7d' | '30d';
export const presets: { id: Preset; label: string; hours: number; key: string }[] = [
  { id: '24h', label: 'Last 24 hours', hours: 24, key: 'd' },
  { id: '7d', label: 'Last 7 days', hours: 24 * 7, key: 'w' },
  { id: '30d', label: 'Last 30 days', hours: 24 * 30, key: 'm' },
];

export interface Range {
  from: Date;
  to: Date;
  /** Bucket size that gives a readable chart for this span. */
  interval: 'hour' | 'day';
}

const HOUR = 3_600_000;

export function presetRange(p: Preset, now = Date.now()): Range {
  const hours = presets.find((x) => x.id === p)?.hours ?? 24 * 7;
  const to = Math.floor(now / HOUR) * HOUR + HOUR;
  return { from: new Date(to - hours * HOUR), to: new Date(to), interval: hours <= 48 ? 'hour' : 'day' };
}

/** `from`/`to` as `YYYY-MM-DD` UTC dates, both included. */
export function customRange(from: string, to: string): Range | null {
  const f = Date.parse(from + 'T00:00:00Z');
  const t = Date.parse(to + 'T00:00:00Z');
  if (!Number.isFinite(f) || !Number.isFinite(t) || t < f) return null;
  const end = t + 24 * HOUR;
  return { from: new Date(f), to: new Date(end), interval: end - f <= 48 * HOUR ? 'hour' : 'day' };
}

export const iso = (d: Date): string => d.toISOString().replace('.000Z', 'Z');
export const isoDate = (d: Date): string => d.toISOString().slice(0, 10);
