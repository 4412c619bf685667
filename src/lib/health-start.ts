import { stringify } from 'yaml';
import { composeServiceDefs } from './compose-model.ts';

/** The docker API version from which the engine honours a healthcheck's `start_interval` (docker 25). */
export const START_INTERVAL_API = '1.44';
/** The probe interval lading sets during the start period where the service sets none. */
export const DEFAULT_START_INTERVAL = '1s';
/** The start period lading sets with it where the service sets none (start_interval only applies within it). */
export const DEFAULT_START_PERIOD = '30s';

/** `a` ≥ `b` for docker API versions (`1.41`, `1.44`); an unreadable version counts as old. */
export function apiAtLeast(version: string | undefined, min: string): boolean {
  const v = /^\s*(\d+)\.(\d+)\s*$/.exec(version ?? '');
  const m = /^(\d+)\.(\d+)$/.exec(min);
  if (!v || !m) return false;
  const [va, vb, ma, mb] = [v[1], v[2], m[1], m[2]].map(Number) as [number, number, number, number];
  return va > ma || (va === ma && vb >= mb);
}

type Health = { test?: unknown; disable?: unknown; start_interval?: unknown; start_period?: unknown };

/**
 * The compose override that makes health known sooner on engines that support it: every service (of `services`,
 * or all) with a healthcheck and no `start_interval` gets `start_interval: 1s` (and `start_period: 30s` if it has
 * none), so its first probes run every second instead of after a whole `interval`. A service's own
 * `start_interval`/`start_period` is honoured as written. On an engine older than API 1.44 (docker < 25) or of an
 * unknown version: undefined, no override (the engine ignores start_interval; health shows after the first
 * `interval`; compose itself refuses a `start_interval` there: see startIntervalRefused).
 */
export function startIntervalOverride(
  apiVersion: string | undefined,
  files: Array<{ content: string }>,
  services?: string[],
): string | undefined {
  if (!apiAtLeast(apiVersion, START_INTERVAL_API)) return undefined;
  const health = healthchecks(files);
  const out: Record<string, { healthcheck: { start_interval: string; start_period?: string } }> = {};
  for (const [name, h] of health) {
    if (services && !services.includes(name)) continue;
    if (!h || h.disable === true || h.test === undefined || h.start_interval !== undefined) continue;
    if (Array.isArray(h.test) && h.test[0] === 'NONE') continue;
    out[name] = {
      healthcheck: {
        start_interval: DEFAULT_START_INTERVAL,
        ...(h.start_period === undefined ? { start_period: DEFAULT_START_PERIOD } : {}),
      },
    };
  }
  return Object.keys(out).length ? stringify({ services: out }) : undefined;
}

/**
 * The services whose `start_interval` docker compose refuses on this engine ("can't set healthcheck.start_interval
 * as feature require Docker Engine v25 or later"): every service that sets one, on an engine older than API 1.44.
 */
export function startIntervalRefused(apiVersion: string | undefined, files: Array<{ content: string }>): string[] {
  if (apiAtLeast(apiVersion, START_INTERVAL_API)) return [];
  return [...healthchecks(files)]
    .filter(([, h]) => h?.start_interval !== undefined && h.disable !== true)
    .map(([name]) => name);
}

/** Each service's healthcheck merged over the compose files (later files override keys). */
function healthchecks(files: Array<{ content: string }>): Map<string, Health | undefined> {
  const health = new Map<string, Health | undefined>();
  for (const defs of composeServiceDefs(files)) {
    for (const [name, svc] of Object.entries(defs)) {
      const h = svc.healthcheck as Health | undefined;
      if (h && typeof h === 'object') health.set(name, { ...(health.get(name) ?? {}), ...h });
      else if (!health.has(name)) health.set(name, undefined);
    }
  }
  return health;
}
