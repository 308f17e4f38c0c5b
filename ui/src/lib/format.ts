// Number and time formatting shared by every page.

const int = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const dec = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const compact = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });

export const fmtInt = (n: number | null | undefined): string => (n == null ? '–' : int.format(n));
export const fmtNum = (n: number | null | undefined): string => (n == null ? '–' : dec.format(n));
export const fmtCompact = (n: number): string => compact.format(n);
export const fmtPct = (r: number | null | undefined): string =>
  r == null ? '–' : `${(r * 100).toFixed(r < 0.1 ? 2 : 1)} %`;
export const fmtMoney = (n: number | null | undefined): string => (n == null ? '–' : dec.format(n));

/** `2026-12-06 09:00 UTC`. */
export function fmtUtc(d: Date | number, withTime = true): string {
  const s = new Date(d).toISOString();
  return withTime ? `${s.slice(0, 10)} ${s.slice(11, 16)} UTC` : s.slice(0, 10);
}

/** The viewer's local time with its zone name. */
export function fmtLocal(d: Date | number): string {
  return new Intl.DateTimeFormat(undefined, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    timeZoneName: 'short',
  }).format(new Date(d));
}

export const localZone = (): string => Intl.DateTimeFormat().resolvedOptions().timeZone;

export function fmtMs(ms: number): string {
  return ms < 1000 ? `${ms.toFixed(ms < 10 ? 1 : 0)} ms` : `${(ms / 1000).toFixed(2)} s`;
}
