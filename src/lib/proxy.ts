import { composeServiceDefs } from './compose-model.ts';
import { InputError, LadingError } from './errors.ts';
import { type InputReader, readInputs } from './input-values.ts';

/**
 * Zero-downtime deploys behind a shared Caddy 2 proxy: which services roll (and where the proxy sends their traffic),
 * and the proxy routes of one app as Caddy JSON. Pure: no I/O. The host side (src/lib/remote/host.sh, `proxy_*` and
 * `rolling_*` steps) fills in the upstream addresses of the containers it started and loads the config through
 * Caddy's admin API.
 */

/** One `rolling` service: its containers are replaced beside the old ones and switched in the proxy. */
export interface RollingSpec {
  service: string;
  /** Host names routed to it (exact names, or one leading `*.` wildcard label). */
  hosts: string[];
  /** Path prefix routed to it ('/' = everything on its hosts). */
  path: string;
  /** The port the app listens on inside its containers. */
  port: number;
  /** Path probed on each new container (direct HTTP, every 150 ms) before traffic is switched. */
  health: string;
  /** Containers started per release. */
  replicas: number;
  /** Seconds old containers keep running after the switch (in-flight requests finish; rollback is instant). */
  drain: number;
}

export type ProxyTls = 'auto' | 'internal' | 'off';

/** The shared proxy of a host: one Caddy container per host, on a docker network it shares with the apps. */
export interface ProxySettings {
  container: string;
  network: string;
  image: string;
  /** docker run -p values (host side of the proxy's :80 and :443). */
  ports: string[];
  tls: ProxyTls;
  /** Replace a running proxy whose image differs from `image` (otherwise it is kept, and the deploy says so). */
  upgrade: boolean;
}

export const DEFAULT_DRAIN = 10;

const SERVICE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const HOST_RE = /^(?:\*\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
const PATH_RE = /^\/[A-Za-z0-9._~!$&'()+,;=:@%/-]{0,200}$/;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const IMAGE_RE = /^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$/;
const PORT_MAP_RE = /^(?:(?:\d{1,3}\.){3}\d{1,3}:)?\d{1,5}:(?:80|443)$/;

function fail(source: string, what: string, fix?: string): never {
  throw new InputError(source, what, fix);
}

function checkHost(source: string, h: string): string {
  const host = h.trim().toLowerCase();
  if (!HOST_RE.test(host) || host.length > 253)
    fail(source, `'${h}' is not a host name`, 'use names like app.example.com');
  return host;
}

function checkPath(source: string, p: string): string {
  if (!PATH_RE.test(p) || p.includes('*') || p.includes('//'))
    fail(source, `'${p}' is not a path prefix`, 'use a path like /api');
  return p.length > 1 ? p.replace(/\/+$/, '') : p;
}

function int(source: string, name: string, v: unknown, min: number, max: number): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < min || n > max)
    fail(source, `${name} '${String(v)}' must be a whole number ${min}–${max}`);
  return n;
}

function spec(source: string, service: string, o: Record<string, unknown>): RollingSpec {
  if (!SERVICE_RE.test(service)) fail(source, `'${service}' is not a service name`);
  const hosts = (Array.isArray(o.hosts) ? o.hosts : typeof o.hosts === 'string' ? o.hosts.split(',') : []).map((h) =>
    checkHost(source, String(h)),
  );
  if (hosts.length === 0) fail(source, `service ${service} has no hosts`, 'give the host names the proxy routes to it');
  return {
    service,
    hosts: [...new Set(hosts)],
    path: checkPath(source, o.path === undefined ? '/' : String(o.path)),
    port: int(source, 'port', o.port ?? 80, 1, 65535),
    health: checkPath(source, o.health === undefined ? '/' : String(o.health)),
    replicas: int(source, 'replicas', o.replicas ?? 1, 1, 20),
    drain: int(source, 'drain', o.drain ?? DEFAULT_DRAIN, 0, 3600),
  };
}

/**
 * The `rolling` input: one service per line (or `;`-separated), `service host[,host…][/path] [port=N] [health=/p]
 * [replicas=N] [drain=S]`, e.g. `web app.example.com,www.example.com port=8080 health=/up`.
 */
export function parseRollingInput(raw: string | undefined): RollingSpec[] {
  const out: RollingSpec[] = [];
  for (const line of (raw ?? '').split(/[\n;]/)) {
    const words = line.trim().split(/\s+/).filter(Boolean);
    if (words.length === 0) continue;
    const [service, where, ...opts] = words as [string, string | undefined, ...string[]];
    if (!where) fail('rolling', `'${line.trim()}' names no host`, 'write: service host[,host][/path] [port=N]');
    const slash = where.indexOf('/');
    const o: Record<string, unknown> = {
      hosts: slash < 0 ? where : where.slice(0, slash),
      ...(slash < 0 ? {} : { path: where.slice(slash) }),
    };
    for (const opt of opts) {
      const m = /^(port|health|replicas|drain)=(.+)$/.exec(opt);
      if (!m) fail('rolling', `'${opt}' is not port=, health=, replicas= or drain=`);
      o[m[1]!] = m[2];
    }
    out.push(spec('rolling', service, o));
  }
  return unique(out, 'rolling');
}

function unique(specs: RollingSpec[], source: string): RollingSpec[] {
  const seen = new Set<string>();
  for (const s of specs) {
    if (seen.has(s.service)) fail(source, `service ${s.service} is listed twice`);
    seen.add(s.service);
  }
  return specs;
}

interface ComposeService {
  'x-lading'?: unknown;
  container_name?: unknown;
  ports?: unknown;
  network_mode?: unknown;
}

/**
 * The rolling services of a compose project: `x-lading: { strategy: rolling, hosts, path, port, health, replicas,
 * drain }` on a service (later files override earlier ones, key by key, as compose merges them), then the `rolling`
 * input on top (it wins per service). A rolling service must not publish host ports, set container_name or use
 * network_mode: two of its containers run side by side and the proxy reaches them over its network.
 */
export function rollingServices(
  files: Array<{ path: string; content: string }>,
  input: RollingSpec[] = [],
): RollingSpec[] {
  const merged = new Map<string, ComposeService>();
  for (const defs of composeServiceDefs(files) as Array<Record<string, ComposeService>>) {
    for (const [name, svc] of Object.entries(defs)) {
      const prev = merged.get(name) ?? {};
      const x = svc['x-lading'];
      merged.set(name, {
        ...prev,
        ...svc,
        ...(x && typeof x === 'object' ? { 'x-lading': { ...(prev['x-lading'] as object), ...(x as object) } } : {}),
      });
    }
  }
  const out: RollingSpec[] = [];
  for (const [name, svc] of merged) {
    const x = svc['x-lading'] as Record<string, unknown> | undefined;
    if (!x || typeof x !== 'object') continue;
    const source = `x-lading of service ${name}`;
    const strategy = x.strategy ?? 'recreate';
    if (strategy === 'recreate') continue;
    if (strategy !== 'rolling') fail(source, `strategy '${String(strategy)}' is not rolling or recreate`);
    if (input.some((s) => s.service === name)) continue;
    out.push(spec(source, name, x));
  }
  for (const s of input) {
    if (!merged.has(s.service))
      fail('rolling', `service ${s.service} is not in the compose files`, 'name a service of the project');
    out.push(s);
  }
  for (const s of out) {
    const svc = merged.get(s.service)!;
    const why =
      svc.container_name !== undefined
        ? 'sets container_name (two containers cannot share one name)'
        : hostPorts(svc.ports)
          ? 'publishes host ports (the new container could not bind them while the old one runs; the proxy publishes the app)'
          : svc.network_mode !== undefined
            ? 'sets network_mode (the proxy reaches containers over its own network)'
            : '';
    if (why) {
      throw new LadingError(
        `service ${s.service} cannot roll: it ${why}`,
        'remove that key from the service, or deploy it with strategy recreate',
      );
    }
  }
  return out.sort((a, b) => a.service.localeCompare(b.service));
}

function hostPorts(ports: unknown): boolean {
  if (!Array.isArray(ports)) return false;
  return ports.some((p) =>
    typeof p === 'object' && p !== null
      ? (p as { published?: unknown }).published !== undefined
      : /:/.test(String(p).replace(/\/(tcp|udp)$/, '')),
  );
}

/** The proxy inputs, validated (`read` gives raw strings; defaults and the accepted tls/upgrade values are the table's). */
export function parseProxySettings(read: InputReader): ProxySettings {
  const v = readInputs(read, [
    'proxy-container',
    'proxy-network',
    'proxy-image',
    'proxy-ports',
    'proxy-tls',
    'proxy-upgrade',
  ]);
  const container = v['proxy-container'];
  const network = v['proxy-network'];
  const image = v['proxy-image'];
  return {
    container: NAME_RE.test(container) ? container : fail('proxy-container', `'${container}' is not a container name`),
    network: NAME_RE.test(network) ? network : fail('proxy-network', `'${network}' is not a network name`),
    image: IMAGE_RE.test(image) ? image : fail('proxy-image', `'${image}' is not an image reference`),
    ports: v['proxy-ports']
      .split(/[\s,]+/)
      .filter(Boolean)
      .map((p) =>
        PORT_MAP_RE.test(p)
          ? p
          : fail('proxy-ports', `'${p}' is not [ip:]hostport:80 or [ip:]hostport:443`, 'e.g. 80:80,443:443'),
      ),
    tls: v['proxy-tls'],
    upgrade: v['proxy-upgrade'],
  };
}

/** The proxy of a deploy that sets no proxy input (the table's defaults). */
export const DEFAULT_PROXY: ProxySettings = parseProxySettings(() => undefined);

/** The token the host replaces with the dial addresses of a service's current containers. */
export const upstreamToken = (service: string, port: number) => `@@up:${service}:${port}@@`;

function pathMatch(path: string): Record<string, unknown> {
  return path === '/' ? {} : { path: [path, `${path}/*`] };
}

/**
 * One app's routes (a JSON array, without brackets, ready to splice into the server's route list) for Caddy's
 * `http` app: one route per service, longer path prefixes first; upstreams as tokens the host fills in.
 */
export function renderRoutes(project: string, specs: RollingSpec[]): string {
  const ordered = [...specs].sort((a, b) => b.path.length - a.path.length || a.service.localeCompare(b.service));
  return ordered
    .map((s) =>
      JSON.stringify({
        '@id': `lading-${project}-${s.service}`,
        match: [{ host: s.hosts, ...pathMatch(s.path) }],
        handle: [
          {
            handler: 'reverse_proxy',
            upstreams: ['UPSTREAMS'],
            // a dial error on a container that just went away is retried on the others for a moment
            load_balancing: { selection_policy: { policy: 'round_robin' }, try_duration: '2s', try_interval: '100ms' },
          },
        ],
        terminal: true,
      }).replace('"UPSTREAMS"', upstreamToken(s.service, s.port)),
    )
    .join(',');
}

export const DEFAULT_MAINTENANCE_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Down for maintenance</title></head>
<body><h1>Down for maintenance</h1><p>We will be back shortly.</p></body></html>
`;

/** The app's maintenance route: 503 with the page (and Retry-After) for all its host names. */
export function renderMaintenance(project: string, specs: RollingSpec[], page = DEFAULT_MAINTENANCE_PAGE): string {
  const hosts = [...new Set(specs.flatMap((s) => s.hosts))].sort();
  if (hosts.length === 0) {
    throw new LadingError(
      `project ${project} has no rolling service, so the proxy routes no host name to it`,
      'maintenance mode answers for the host names of rolling services (x-lading hosts)',
    );
  }
  if (Buffer.byteLength(page) > 512 * 1024) throw new InputError('maintenance-page', 'is larger than 512 KiB');
  return JSON.stringify({
    '@id': `lading-${project}-maintenance`,
    match: [{ host: hosts }],
    handle: [
      {
        handler: 'static_response',
        status_code: 503,
        headers: { 'Content-Type': ['text/html; charset=utf-8'], 'Retry-After': ['60'], 'Cache-Control': ['no-store'] },
        body: page,
      },
    ],
    terminal: true,
  });
}

/** TLS automation policies for the app's host names (internal CA in tests, ACME otherwise; none when off). */
export function renderTlsPolicy(specs: RollingSpec[], tls: ProxyTls): string {
  const hosts = [...new Set(specs.flatMap((s) => s.hosts))].sort();
  if (tls === 'off' || hosts.length === 0) return '';
  return JSON.stringify({ subjects: hosts, ...(tls === 'internal' ? { issuers: [{ module: 'internal' }] } : {}) });
}

/** The env the host's proxy steps read (values travel as quoted exports, never on a command line). */
export function proxyEnv(proxy: ProxySettings): Record<string, string> {
  return {
    LADING_PROXY_CONTAINER: proxy.container,
    LADING_PROXY_NETWORK: proxy.network,
    LADING_PROXY_IMAGE: proxy.image,
    LADING_PROXY_PORTS: proxy.ports.join(' '),
    LADING_PROXY_TLS: proxy.tls,
    LADING_PROXY_UPGRADE: proxy.upgrade ? '1' : '0',
  };
}

/** The env of the rolling steps: `service:port:health:replicas:drain` per line. */
export function rollingEnv(specs: RollingSpec[]): Record<string, string> {
  return {
    LADING_ROLLING: specs.map((s) => `${s.service} ${s.port} ${s.health} ${s.replicas} ${s.drain}`).join('\n'),
  };
}
