import { composeServiceDefs } from '../lib/compose-model.ts';
import { LadingError } from '../lib/errors.ts';
import type { Manifest } from '../lib/manifest.ts';
import {
  type ProxySettings,
  type RollingSpec,
  proxyEnv,
  renderMaintenance,
  renderRoutes,
  renderTlsPolicy,
  rollingEnv,
  rollingServices,
} from '../lib/proxy.ts';

import type { RunStep } from './host/steps.ts';

export type { RunStep } from './host/steps.ts';

/** The zero-downtime settings of a deploy: rolling services from the `rolling` input, and the proxy. */
export interface RollingSettings {
  input: RollingSpec[];
  proxy: ProxySettings;
}

/** What a release rolls: its rolling services, the others (recreated as usual), and its proxy routes. */
export interface RollingPlan {
  specs: RollingSpec[];
  others: string[];
  env: Record<string, string>;
}

/** The rolling plan of a release (undefined: no rolling service, the deploy recreates as before). */
export function rollingPlan(manifest: Manifest, project: string, settings: RollingSettings): RollingPlan | undefined {
  const files = (manifest.compose?.files ?? []).map((f) => ({ path: f.path, content: f.content ?? '' }));
  const specs = rollingServices(files, settings.input);
  if (specs.length === 0) return undefined;
  const rolling = new Set(specs.map((s) => s.service));
  const services = composeServices(files);
  const others = [...services.keys()].filter((s) => !services.get(s)!.profiled && !rolling.has(s));
  // the recreate services' compose run and the rolling services' one go at once, unless a rolling service needs one
  // of the others (depends_on, links, volumes_from): then the others first, as recreate would
  const needsOthers = [...rolling].some((r) => [...(services.get(r)?.needs ?? [])].some((n) => others.includes(n)));
  return {
    specs,
    others,
    env: {
      ...proxyEnv(settings.proxy),
      ...rollingEnv(specs),
      LADING_OTHERS: others.join(' '),
      LADING_OTHERS_AT_ONCE: needsOthers ? '0' : '1',
      LADING_ROUTES: renderRoutes(project, specs),
      LADING_TLS_POLICY: renderTlsPolicy(specs, settings.proxy.tls),
    },
  };
}

interface ServiceFacts {
  /** only under a profile: `compose up` does not start it by default */
  profiled: boolean;
  /** the services it needs started first or shares something with */
  needs: Set<string>;
}

/** Every service over all files: whether it has profiles, and which services it needs. */
function composeServices(files: Array<{ content: string }>): Map<string, ServiceFacts> {
  const services = new Map<string, ServiceFacts>();
  for (const defs of composeServiceDefs(files)) {
    for (const [name, svc] of Object.entries(defs)) {
      const facts = services.get(name) ?? { profiled: false, needs: new Set<string>() };
      facts.profiled ||= Array.isArray(svc.profiles);
      for (const n of serviceNeeds(svc)) facts.needs.add(n);
      services.set(name, facts);
    }
  }
  return services;
}

/**
 * The services one service definition refers to: depends_on, links, volumes_from, network_mode service:<name> (a
 * rolling service cannot set network_mode, but another service's facts are read the same way).
 */
export function serviceNeeds(svc: Record<string, unknown>): string[] {
  const names: string[] = [];
  const dep = svc.depends_on;
  if (Array.isArray(dep)) names.push(...dep.map(String));
  else if (dep && typeof dep === 'object') names.push(...Object.keys(dep));
  if (Array.isArray(svc.links)) names.push(...svc.links.map((l) => String(l).split(':')[0]!));
  // volumes_from: `name[:ro|rw]`, `service:name[:mode]` or `container:name[:mode]` (a container is no service)
  if (Array.isArray(svc.volumes_from)) {
    for (const v of svc.volumes_from.map(String)) {
      const [kind, name] = v.split(':');
      if (kind === 'service' && name) names.push(name);
      else if (kind !== 'container') names.push(kind!);
    }
  }
  if (typeof svc.network_mode === 'string' && svc.network_mode.startsWith('service:')) {
    names.push(svc.network_mode.slice('service:'.length));
  }
  return names;
}

/**
 * Rolls a release out on one host: the proxy ensured, the recreate services up, new containers of each rolling
 * service beside the old ones, the gate (direct probe of the new containers, then the usual health gate of the
 * others), the switch in the proxy, the old containers draining. A failed gate removes the new containers: the old
 * ones never stopped serving. `reuse`: a release whose containers still run (drain window) is switched back to them.
 */
export async function rollOut(
  run: RunStep,
  env: Record<string, string>,
  plan: RollingPlan,
  opts: { reuse?: boolean; beforeSwitch?: () => Promise<void> } = {},
): Promise<void> {
  const e = { ...env, ...plan.env, LADING_REUSE: opts.reuse ? '1' : '0', LADING_WITH_OTHERS: '1' };
  await run('proxy_ensure rolling_start', e);
  try {
    await run('rolling_gate health', e);
    if (opts.beforeSwitch) await opts.beforeSwitch();
  } catch (err) {
    if (!opts.reuse) await run('rolling_abort', e).catch(() => undefined);
    throw err;
  }
  // the switch and the drain in one round trip (a refused switch leaves the old routes, and nothing drains)
  try {
    await run('proxy_switch rolling_retire', e);
  } catch (err) {
    if (!opts.reuse) await run('rolling_abort', e).catch(() => undefined);
    throw err;
  }
}

/**
 * Brings a release up and through the health gate: `up health` (recreate), or with rolling services the rolling
 * flow (rollOut). `reuse`: an earlier release whose rolling containers still run is switched back.
 */
export async function bringUp(
  run: RunStep,
  manifest: Manifest,
  env: Record<string, string>,
  settings: RollingSettings,
  reuse = false,
): Promise<void> {
  const plan = rollingPlan(manifest, env.LADING_PROJECT!, settings);
  if (!plan) {
    // a release from before rolling (or with rolling turned off): draining containers are taken back from their drain
    // jobs (compose recreates or removes them), `up` removes the rolling containers, so the app's proxy routes go
    // with them (both do nothing for an app that never rolled)
    await run('rolling_undrain up proxy_forget health', { ...env, ...proxyEnv(settings.proxy) });
    return;
  }
  await rollOut(run, env, plan, { reuse });
}

/** Maintenance on (a 503 page for the app's host names: `page`, or lading's default) or off, through the proxy. */
export async function setMaintenance(
  run: RunStep,
  env: Record<string, string>,
  manifest: Manifest,
  project: string,
  settings: RollingSettings,
  on: boolean,
  page?: string,
): Promise<void> {
  const plan = rollingPlan(manifest, project, settings);
  if (!plan) {
    throw new LadingError(
      `project ${project} has no rolling service behind the proxy`,
      'maintenance mode answers for the host names of rolling services (x-lading: strategy rolling, hosts)',
    );
  }
  const route = on ? renderMaintenance(project, plan.specs, page || undefined) : '';
  await run('proxy_ensure proxy_maintenance', { ...env, ...plan.env, LADING_MAINTENANCE_ROUTE: route });
}
