import { posix } from 'node:path';
import { isMap, isScalar, parseDocument } from 'yaml';
import { interpolate, parseDotEnv } from './compose-interpolate.ts';
import { LadingError } from './errors.ts';

/**
 * A compose project as compose itself models it: the services after `.env`, interpolation, anchors and merge keys,
 * `include`, `extends`, override files and profiles — the one view lading builds, ships and deploys from.
 *
 * Two producers fill it: `fromComposeConfig` reads what `docker compose config --format json` (or v1's
 * `docker-compose config`) printed, and `resolveCompose` is the built-in resolver for runners without compose.
 * Both end in the same normaliser, so the differential tests compare like with like. Pure: files are read through
 * the `read` function the caller passes.
 */

export interface ComposeBuildModel {
  /** Absolute directory, or a remote (git/https) context as written. */
  context: string;
  dockerfile?: string;
  dockerfileInline?: string;
  target?: string;
  args: Record<string, string>;
  labels: Record<string, string>;
  platforms: string[];
  /** Secret ids the build may mount (`build.secrets`), in the short/long forms normalised to sources. */
  secrets: string[];
  additionalContexts: Record<string, string>;
}

export interface PortModel {
  target: number;
  published?: string;
  hostIp?: string;
  protocol: string;
}

export interface MountModel {
  type: string;
  /** Absolute path for binds, a volume name for volumes, absent for anonymous volumes and tmpfs. */
  source?: string;
  target: string;
  readOnly: boolean;
}

export interface DependsOnModel {
  condition: 'service_started' | 'service_healthy' | 'service_completed_successfully';
  required: boolean;
}

export interface ComposeServiceModel {
  name: string;
  image?: string;
  build?: ComposeBuildModel;
  profiles: string[];
  /** Enabled under the active profiles (no profiles, or one of them active). */
  active: boolean;
  /** After env_file and environment; a key without a value anywhere is null (compose passes it through unset). */
  environment: Record<string, string | null>;
  /** env_file entries (absolute), for shipping; their values are already in environment. */
  envFiles: Array<{ path: string; required: boolean }>;
  dependsOn: Record<string, DependsOnModel>;
  ports: PortModel[];
  volumes: MountModel[];
  secrets: string[];
  configs: string[];
  healthcheck: boolean;
  restart?: string;
}

export interface FileObjectModel {
  /** Absolute path for `file:`; absent for external/environment/content ones. */
  file?: string;
  /** The variable holding the value (`environment:`). */
  environment?: string;
  external: boolean;
}

export interface ComposeModel {
  name: string;
  projectDir: string;
  services: Record<string, ComposeServiceModel>;
  volumes: Record<string, { external: boolean }>;
  secrets: Record<string, FileObjectModel>;
  configs: Record<string, FileObjectModel>;
  profiles: string[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** compose's project name rule: lowercase, only a-z 0-9 _ - (v2 also requires a letter or digit first). */
export function normalizeProjectName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9_-]/g, '');
}

/** The files compose picks when none are named: the first of these names in the project directory, plus its override. */
export const DEFAULT_COMPOSE_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yaml', 'docker-compose.yml'];

export function defaultComposeFiles(dir: string, exists: (path: string) => boolean): string[] {
  for (const name of DEFAULT_COMPOSE_FILES) {
    const path = posix.join(dir, name);
    if (!exists(path)) continue;
    const override = path.replace(/\.(ya?ml)$/, '.override.$1');
    return exists(override) ? [path, override] : [path];
  }
  throw new LadingError(
    `no compose file in ${dir} (looked for ${DEFAULT_COMPOSE_FILES.join(', ')})`,
    'name the files with compose-files',
  );
}

/** Active profiles: the profiles given, else COMPOSE_PROFILES (comma-separated), as compose reads them. */
export function activeProfiles(given: string[], env: Record<string, string | undefined>): string[] {
  const list = given.length > 0 ? given : (env.COMPOSE_PROFILES ?? '').split(',');
  return [...new Set(list.map((p) => p.trim()).filter(Boolean))];
}

// ---------------------------------------------------------------------------------------------------------------
// The built-in resolver

export interface ResolveOptions {
  /** Absolute paths in order (defaultComposeFiles when the user named none). */
  files: string[];
  /** Absolute; compose's default is the directory of the first file. */
  projectDir?: string;
  /** The process environment (it wins over .env, as in compose). */
  env: Record<string, string | undefined>;
  /** --env-file paths (absolute); default: <projectDir>/.env when it exists. */
  envFiles?: string[];
  profiles?: string[];
  /** Reads an absolute path; undefined when there is no such file. */
  read: (path: string) => string | undefined;
}

export interface ResolvedCompose {
  model: ComposeModel;
  /** The variables compose interpolates with (.env under the process env). */
  env: Record<string, string>;
  /** The .env files read (absolute). */
  envFiles: string[];
  /** Variables used without a value (compose substitutes '' and warns). */
  missing: string[];
  /** Every compose file read, includes and extended files too (absolute). */
  files: string[];
}

const TOP_KEYS = new Set(['version', 'name', 'services', 'networks', 'volumes', 'secrets', 'configs', 'include']);
const SERVICE_KEYS = new Set(
  (
    'annotations attach blkio_config build cap_add cap_drop cgroup cgroup_parent command configs container_name ' +
    'cpu_count cpu_percent cpu_period cpu_quota cpu_rt_period cpu_rt_runtime cpu_shares cpus cpuset credential_spec ' +
    'depends_on deploy develop device_cgroup_rules devices dns dns_opt dns_search domainname driver_opts entrypoint ' +
    'env_file environment expose extends external_links extra_hosts gpus group_add healthcheck hostname image init ' +
    'ipc isolation labels label_file links logging mac_address mem_limit mem_reservation mem_swappiness memswap_limit ' +
    'models network_mode networks oom_kill_disable oom_score_adj pid pids_limit platform ports post_start pre_stop ' +
    'privileged profiles provider pull_policy read_only restart runtime scale secrets security_opt shm_size ' +
    'stdin_open stop_grace_period stop_signal storage_opt sysctls tmpfs tty ulimits use_api_socket user userns_mode ' +
    'uts volumes volumes_from working_dir'
  ).split(' '),
);
const BUILD_KEYS = new Set(
  (
    'context dockerfile dockerfile_inline args ssh cache_from cache_to additional_contexts extra_hosts isolation ' +
    'privileged labels no_cache pull network shm_size target secrets tags ulimits platforms entitlements provenance sbom'
  ).split(' '),
);

class Ctx {
  missing = new Set<string>();
  files = new Set<string>();
  constructor(
    readonly env: Record<string, string | undefined>,
    readonly read: (path: string) => string | undefined,
    /** The process environment alone: env_file values expand from it (not from .env), as compose v1 does. */
    readonly processEnv: Record<string, string | undefined> = env,
  ) {}
}

function fail(file: string, key: string, message: string, hint?: string): never {
  throw new LadingError(`${file}: ${key}: ${message}`, hint);
}

/**
 * One compose file's YAML as compose reads it: YAML 1.1 merge keys on, duplicate keys refused, anchors resolved
 * (up to 10000 aliases), the top level a mapping (an empty file is an empty one). Not interpolated. The one YAML
 * reading of compose files: the resolver and compose-policy both use it.
 */
export function parseComposeYaml(text: string, path: string): Record<string, unknown> {
  const doc = parseDocument(text, { merge: true, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new LadingError(`${path} is not valid YAML: ${doc.errors[0]!.message}`, 'fix the YAML');
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 10000 });
  } catch (err) {
    throw new LadingError(`${path}: ${(err as Error).message}`, 'fix the YAML');
  }
  if (data === null || data === undefined) data = {};
  if (!isObj(data)) fail(path, '(top level)', 'must be a mapping');
  if (!isMap(doc.contents) && !isScalar(doc.contents) && doc.contents !== null)
    fail(path, '(top level)', 'must be a mapping');
  return data;
}

/**
 * Each release compose file's top-level mapping, read as compose reads it (merge keys `<<: *anchor` applied), for the
 * parts of a deploy that look up one thing in the files (rolling services, healthchecks, hooks, service names). A file
 * that does not parse is skipped: compose itself reports it, with a better message.
 */
export function composeDocs(files: Array<{ path?: string; content?: string }>): Obj[] {
  const docs: Obj[] = [];
  for (const f of files) {
    try {
      docs.push(parseComposeYaml(f.content ?? '', f.path ?? 'compose file'));
    } catch {
      // reported by compose
    }
  }
  return docs;
}

/** Each compose file's `services:`, name → definition (a service given as null or a scalar reads as {}). */
export function composeServiceDefs(files: Array<{ path?: string; content?: string }>): Array<Record<string, Obj>> {
  return composeDocs(files).map((doc) =>
    Object.fromEntries(
      Object.entries(isObj(doc.services) ? doc.services : {}).map(([name, svc]) => [name, isObj(svc) ? svc : {}]),
    ),
  );
}

/** Parses one compose file (parseComposeYaml), checks its top-level keys, then interpolates every string value. */
function loadFile(path: string, ctx: Ctx): Obj {
  const text = ctx.read(path);
  if (text === undefined) throw new LadingError(`compose file ${path} does not exist`, 'check compose-files');
  ctx.files.add(path);
  const data = parseComposeYaml(text, path);
  for (const key of Object.keys(data)) {
    if (!TOP_KEYS.has(key) && !key.startsWith('x-')) {
      fail(path, key, 'is not a compose top-level key', `use ${[...TOP_KEYS].join(', ')} or an x- extension`);
    }
  }
  return interpolateTree(data, path, '', ctx) as Obj;
}

function interpolateTree(value: unknown, file: string, key: string, ctx: Ctx): unknown {
  if (typeof value === 'string') {
    try {
      return interpolate(value, ctx.env, ctx.missing);
    } catch (err) {
      fail(file, key || '(top level)', (err as Error).message, 'set the variable in the environment or the .env file');
    }
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolateTree(v, file, `${key}[${i}]`, ctx));
  if (isObj(value)) {
    const out: Obj = {};
    for (const [k, v] of Object.entries(value)) {
      // extension fields are not compose's: left as written
      out[k] = k.startsWith('x-') ? v : interpolateTree(v, file, key ? `${key}.${k}` : k, ctx);
    }
    return out;
  }
  return value;
}

interface RawService {
  data: Obj;
  /** Directory relative paths of this definition resolve against. */
  dir: string;
  file: string;
}

/**
 * The variables compose interpolates with: the --env-file files (all must exist), else the project's `.env` when
 * there is one, each expanded with the process environment and the files before it; the process environment wins.
 */
export function composeDotEnv(opts: {
  projectDir: string;
  envFiles?: string[] | undefined;
  env: Record<string, string | undefined>;
  read: (path: string) => string | undefined;
}): { env: Record<string, string>; files: string[] } {
  const dotenv: Record<string, string> = {};
  const files: string[] = [];
  for (const f of opts.envFiles ?? [posix.join(opts.projectDir, '.env')]) {
    const text = opts.read(f);
    if (text === undefined) {
      if (opts.envFiles) throw new LadingError(`env file ${f} does not exist`, 'check compose-env-file');
      continue;
    }
    files.push(f);
    Object.assign(dotenv, parseDotEnv(text, { ...opts.env, ...dotenv }, f));
  }
  const env: Record<string, string> = { ...dotenv };
  for (const [k, v] of Object.entries(opts.env)) if (v !== undefined) env[k] = v;
  return { env, files };
}

/** Resolves a compose project without compose: the built-in resolver (runners where compose is not installed). */
export function resolveCompose(opts: ResolveOptions): ResolvedCompose {
  if (opts.files.length === 0) throw new LadingError('no compose files given', 'name at least one compose file');
  const projectDir = opts.projectDir ?? posix.dirname(opts.files[0]!);
  const { env, files: readEnvFiles } = composeDotEnv({
    projectDir,
    envFiles: opts.envFiles,
    env: opts.env,
    read: opts.read,
  });
  const ctx = new Ctx(env, opts.read, opts.env);

  let merged: Obj = {};
  let services: Record<string, RawService> = {};
  let name: string | undefined;
  for (const file of opts.files) {
    const doc = loadFile(file, ctx);
    const own = servicesOf(doc, file, projectDir);
    for (const inc of includes(doc, file, ctx)) {
      for (const [svc, raw] of Object.entries(inc.services)) {
        if (services[svc] || own[svc]) {
          fail(file, 'include', `service '${svc}' is defined by the project and by an included file`);
        }
        services[svc] = raw;
      }
      merged = mergeTop(merged, inc.top);
    }
    if (typeof doc.name === 'string') name = doc.name;
    services = mergeServiceSets(services, own, file);
    merged = mergeTop(merged, doc);
  }
  const resolvedServices: Record<string, ComposeServiceModel> = {};
  const profiles = activeProfiles(opts.profiles ?? [], env);
  for (const [svcName, raw] of Object.entries(services)) {
    const full = applyExtends(svcName, raw, services, ctx, []);
    resolvedServices[svcName] = normalizeService(svcName, full.data, full.dir, full.file, env, ctx, profiles);
  }
  const projectName = normalizeProjectName(env.COMPOSE_PROJECT_NAME || name || posix.basename(projectDir));
  const model: ComposeModel = {
    name: projectName,
    projectDir,
    services: resolvedServices,
    volumes: namedObjects(merged.volumes),
    secrets: fileObjects(merged.secrets, projectDir),
    configs: fileObjects(merged.configs, projectDir),
    profiles,
  };
  if (!projectName) {
    throw new LadingError(
      `the compose project name is empty (from '${env.COMPOSE_PROJECT_NAME || name || projectDir}')`,
      'set name: in the compose file or COMPOSE_PROJECT_NAME',
    );
  }
  return {
    model,
    env,
    envFiles: readEnvFiles,
    missing: [...ctx.missing].sort(),
    files: [...ctx.files],
  };
}

function servicesOf(doc: Obj, file: string, dir: string): Record<string, RawService> {
  if (doc.services === undefined || doc.services === null) return {};
  if (!isObj(doc.services)) fail(file, 'services', 'must be a mapping of service names');
  const out: Record<string, RawService> = {};
  for (const [name, data] of Object.entries(doc.services)) {
    if (name.startsWith('x-')) continue;
    if (data === null) {
      out[name] = { data: {}, dir, file };
      continue;
    }
    if (!isObj(data)) fail(file, `services.${name}`, 'must be a mapping');
    for (const key of Object.keys(data)) {
      if (!SERVICE_KEYS.has(key) && !key.startsWith('x-')) {
        fail(file, `services.${name}.${key}`, 'is not a compose service key', 'check the spelling (compose spec)');
      }
    }
    if (isObj(data.build)) {
      for (const key of Object.keys(data.build)) {
        if (!BUILD_KEYS.has(key) && !key.startsWith('x-'))
          fail(file, `services.${name}.build.${key}`, 'is not a compose build key');
      }
    }
    out[name] = { data, dir, file };
  }
  return out;
}

function includes(doc: Obj, file: string, ctx: Ctx): Array<{ services: Record<string, RawService>; top: Obj }> {
  if (doc.include === undefined) return [];
  if (!Array.isArray(doc.include)) fail(file, 'include', 'must be a list');
  const dir = posix.dirname(file);
  return doc.include.map((entry, i) => {
    const e = typeof entry === 'string' ? { path: entry } : entry;
    if (!isObj(e)) fail(file, `include[${i}]`, 'must be a path or a mapping with path:');
    for (const k of Object.keys(e)) {
      if (!['path', 'project_directory', 'env_file'].includes(k)) fail(file, `include[${i}].${k}`, 'is not supported');
    }
    const paths = (Array.isArray(e.path) ? e.path : [e.path]).map((p) => {
      if (typeof p !== 'string') fail(file, `include[${i}].path`, 'must be a path');
      return posix.resolve(dir, p);
    });
    const incDir =
      typeof e.project_directory === 'string' ? posix.resolve(dir, e.project_directory) : posix.dirname(paths[0]!);
    let incEnv = ctx.env;
    if (e.env_file !== undefined) {
      const list = Array.isArray(e.env_file) ? e.env_file : [e.env_file];
      const extra: Record<string, string> = {};
      for (const f of list) {
        const abs = posix.resolve(dir, String(f));
        const text = ctx.read(abs);
        if (text === undefined) fail(file, `include[${i}].env_file`, `${abs} does not exist`);
        Object.assign(extra, parseDotEnv(text, {}, abs));
      }
      incEnv = { ...extra, ...ctx.env };
    } else {
      const text = ctx.read(posix.join(incDir, '.env'));
      if (text !== undefined) incEnv = { ...parseDotEnv(text, {}, posix.join(incDir, '.env')), ...ctx.env };
    }
    const sub = new Ctx(incEnv, ctx.read, ctx.processEnv);
    sub.missing = ctx.missing;
    sub.files = ctx.files;
    let services: Record<string, RawService> = {};
    let top: Obj = {};
    for (const p of paths) {
      const d = loadFile(p, sub);
      for (const nested of includes(d, p, sub)) {
        services = { ...services, ...nested.services };
        top = mergeTop(top, nested.top);
      }
      services = mergeServiceSets(services, servicesOf(d, p, incDir), p);
      top = mergeTop(top, d);
    }
    // an included file's relative top-level paths (secrets/configs file:) are its own directory's
    for (const kind of ['secrets', 'configs'] as const) {
      if (!isObj(top[kind])) continue;
      top[kind] = Object.fromEntries(
        Object.entries(top[kind]).map(([k, v]) => [
          k,
          isObj(v) && typeof v.file === 'string' ? { ...v, file: posix.resolve(incDir, v.file) } : v,
        ]),
      );
    }
    return { services, top };
  });
}

function mergeTop(a: Obj, b: Obj): Obj {
  const out: Obj = { ...a };
  for (const kind of ['volumes', 'networks', 'secrets', 'configs']) {
    if (isObj(b[kind])) out[kind] = { ...(isObj(a[kind]) ? a[kind] : {}), ...b[kind] };
  }
  return out;
}

function mergeServiceSets(
  base: Record<string, RawService>,
  over: Record<string, RawService>,
  _file: string,
): Record<string, RawService> {
  const out = { ...base };
  for (const [name, svc] of Object.entries(over)) {
    const prev = out[name];
    // paths in override files resolve against the project directory, like the first file's (compose spec and v1)
    out[name] = prev ? { data: mergeService(prev.data, svc.data), dir: prev.dir, file: svc.file } : svc;
  }
  return out;
}

function applyExtends(
  name: string,
  raw: RawService,
  all: Record<string, RawService>,
  ctx: Ctx,
  chain: string[],
): RawService {
  const ext = raw.data.extends;
  if (ext === undefined) return raw;
  const key = `${raw.file}#${name}`;
  if (chain.includes(key))
    fail(raw.file, `services.${name}.extends`, `circular extends: ${[...chain, key].join(' → ')}`);
  const e = typeof ext === 'string' ? { service: ext } : ext;
  if (!isObj(e) || typeof e.service !== 'string') {
    fail(raw.file, `services.${name}.extends`, 'must be a service name or a mapping with service: (and file:)');
  }
  let base: RawService;
  if (typeof e.file === 'string') {
    const path = posix.resolve(posix.dirname(raw.file), e.file);
    const doc = loadFile(path, ctx);
    const others = servicesOf(doc, path, posix.dirname(path));
    const found = others[e.service];
    if (!found) fail(raw.file, `services.${name}.extends`, `no service '${e.service}' in ${path}`);
    base = applyExtends(e.service, found, others, ctx, [...chain, key]);
  } else {
    const found = all[e.service];
    if (!found) fail(raw.file, `services.${name}.extends`, `no service '${e.service}' in this project`);
    base = applyExtends(e.service, found, all, ctx, [...chain, key]);
  }
  // the base's relative paths are its own file's; rebase them before merging onto this service
  const baseData = rebasePaths(base.data, base.dir, raw.dir);
  const { extends: _drop, ...own } = raw.data;
  return { data: mergeService(baseData, own), dir: raw.dir, file: raw.file };
}

/** Makes a service's relative paths (build context, env_file, bind sources) relative to another directory. */
function rebasePaths(data: Obj, from: string, to: string): Obj {
  if (from === to) return data;
  const fix = (p: string) =>
    isRemote(p) || p.startsWith('/') || p.startsWith('~') ? p : posix.relative(to, posix.resolve(from, p)) || '.';
  const out: Obj = { ...data };
  if (typeof out.build === 'string') out.build = fix(out.build);
  else if (isObj(out.build)) {
    const b = { ...out.build };
    b.context = fix(typeof b.context === 'string' ? b.context : '.');
    out.build = b;
  }
  if (out.env_file !== undefined) {
    out.env_file = (Array.isArray(out.env_file) ? out.env_file : [out.env_file]).map((f) =>
      typeof f === 'string' ? fix(f) : isObj(f) && typeof f.path === 'string' ? { ...f, path: fix(f.path) } : f,
    );
  }
  if (Array.isArray(out.volumes)) {
    out.volumes = out.volumes.map((v) => {
      if (typeof v === 'string') {
        const parts = v.split(':');
        if (parts.length > 1 && isPathSource(parts[0]!)) parts[0] = fixDot(fix(parts[0]!));
        return parts.join(':');
      }
      if (isObj(v) && v.type === 'bind' && typeof v.source === 'string') return { ...v, source: fix(v.source) };
      return v;
    });
  }
  return out;
}

const fixDot = (p: string) => (p.startsWith('.') || p.startsWith('/') ? p : `./${p}`);
const isPathSource = (s: string) => s.startsWith('.') || s.startsWith('/') || s.startsWith('~');
const isRemote = (p: string) => /^[a-z]+:\/\//i.test(p) || p.startsWith('git@') || p.startsWith('github.com/');

// ---------------------------------------------------------------------------------------------------------------
// Merging (override files, extends): compose's rules per key

const CONCAT_KEYS = new Set([
  'ports',
  'expose',
  'external_links',
  'dns',
  'dns_search',
  'tmpfs',
  'cap_add',
  'cap_drop',
  'devices',
  'env_file',
  'profiles',
]);
const MAP_KEYS = new Set(['environment', 'labels', 'extra_hosts', 'sysctls', 'annotations']);
const REPLACE_KEYS = new Set(['command', 'entrypoint', 'healthcheck']);

function mergeService(base: Obj, over: Obj): Obj {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const prev = out[k];
    if (prev === undefined || v === null || REPLACE_KEYS.has(k)) out[k] = v;
    else if (MAP_KEYS.has(k)) out[k] = { ...toMap(prev), ...toMap(v) };
    else if (CONCAT_KEYS.has(k)) out[k] = uniq([...asList(prev), ...asList(v)]);
    else if (k === 'build') out[k] = mergeBuild(prev, v);
    else if (k === 'depends_on') out[k] = { ...dependsOnMap(prev), ...dependsOnMap(v) };
    else if (k === 'volumes') out[k] = mergeBy(prev, v, (x) => mountTarget(x));
    else if (k === 'secrets' || k === 'configs')
      out[k] = mergeBy(prev, v, (x) => (isObj(x) ? String(x.source) : String(x)));
    else if (isObj(prev) && isObj(v)) out[k] = deepMerge(prev, v);
    else out[k] = v;
  }
  return out;
}

function deepMerge(a: Obj, b: Obj): Obj {
  const out: Obj = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = isObj(out[k]) && isObj(v) ? deepMerge(out[k] as Obj, v) : v;
  return out;
}

function mergeBuild(a: unknown, b: unknown): Obj {
  const x = typeof a === 'string' ? { context: a } : isObj(a) ? a : {};
  const y = typeof b === 'string' ? { context: b } : isObj(b) ? b : {};
  const out: Obj = { ...x, ...y };
  for (const k of ['args', 'labels', 'additional_contexts']) {
    if (x[k] !== undefined && y[k] !== undefined) out[k] = { ...toMap(x[k]), ...toMap(y[k]) };
  }
  return out;
}

function uniq(list: unknown[]): unknown[] {
  const seen = new Set<string>();
  return list.filter((x) => {
    const key = JSON.stringify(x);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function asList(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [v];
}

function mergeBy(a: unknown, b: unknown, key: (x: unknown) => string): unknown[] {
  const map = new Map<string, unknown>();
  for (const x of [...asList(a), ...asList(b)]) map.set(key(x), x);
  return [...map.values()];
}

function mountTarget(v: unknown): string {
  if (isObj(v)) return String(v.target);
  const parts = String(v).split(':');
  return parts.length === 1 ? parts[0]! : parts[1]!;
}

/** `[K=V, K]` or `{K: V}` → a map; a key without `=` is null (resolved from the environment later). */
function toMap(v: unknown): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (Array.isArray(v)) {
    return Object.fromEntries(
      v.map((item) => {
        const s = String(item);
        const eq = s.indexOf('=');
        return eq === -1 ? [s, null] : [s.slice(0, eq), s.slice(eq + 1)];
      }),
    );
  }
  if (isObj(v)) return v;
  throw new LadingError(`expected a mapping or a list of KEY=VALUE, got ${JSON.stringify(v)}`);
}

function dependsOnMap(v: unknown): Record<string, unknown> {
  if (Array.isArray(v)) return Object.fromEntries(v.map((s) => [String(s), { condition: 'service_started' }]));
  return isObj(v) ? v : {};
}

// ---------------------------------------------------------------------------------------------------------------
// Normalising one service (shared by the built-in resolver and compose's own config output)

const str = (v: unknown): string =>
  v === null || v === undefined ? '' : typeof v === 'boolean' ? String(v) : String(v);

function normalizeService(
  name: string,
  data: Obj,
  dir: string,
  file: string,
  env: Record<string, string | undefined>,
  ctx: Ctx | undefined,
  profiles: string[],
): ComposeServiceModel {
  const where = (k: string) => `services.${name}.${k}`;
  const svc: ComposeServiceModel = {
    name,
    profiles: data.profiles === undefined ? [] : asList(data.profiles).map(String),
    active: true,
    environment: {},
    envFiles: [],
    dependsOn: {},
    ports: [],
    volumes: [],
    secrets: [],
    configs: [],
    healthcheck: isObj(data.healthcheck) && data.healthcheck.disable !== true && data.healthcheck.test !== undefined,
  };
  svc.active = svc.profiles.length === 0 || svc.profiles.some((p) => profiles.includes(p));
  if (data.image !== undefined && data.image !== null) svc.image = str(data.image);
  if (data.restart !== undefined) svc.restart = str(data.restart);
  if (data.build !== undefined && data.build !== null)
    svc.build = normalizeBuild(data.build, dir, file, where('build'));
  // env_file first, environment over it (compose's precedence)
  if (data.env_file !== undefined && data.env_file !== null) {
    for (const [i, entry] of asList(data.env_file).entries()) {
      const e = typeof entry === 'string' ? { path: entry, required: true } : entry;
      if (!isObj(e) || typeof e.path !== 'string')
        fail(file, `${where('env_file')}[${i}]`, 'must be a path or {path, required}');
      const path = posix.resolve(dir, e.path);
      const required = e.required !== false;
      svc.envFiles.push({ path, required });
      if (!ctx) continue;
      const text = ctx.read(path);
      if (text === undefined) {
        if (required) fail(file, where('env_file'), `${path} does not exist`, 'add it, or mark it required: false');
        continue;
      }
      ctx.files.add(path);
      Object.assign(svc.environment, parseDotEnv(text, ctx.processEnv, path));
    }
  }
  for (const [k, v] of Object.entries(toMapAt(data.environment, file, where('environment')))) {
    svc.environment[k] = v === null || v === undefined ? (ctx ? (env[k] ?? null) : null) : str(v);
  }
  if (data.depends_on !== undefined) {
    for (const [dep, raw] of Object.entries(dependsOnMap(data.depends_on))) {
      const d = isObj(raw) ? raw : {};
      const condition = str(d.condition || 'service_started');
      if (!['service_started', 'service_healthy', 'service_completed_successfully'].includes(condition)) {
        fail(file, `${where('depends_on')}.${dep}.condition`, `'${condition}' is not a compose condition`);
      }
      svc.dependsOn[dep] = { condition: condition as DependsOnModel['condition'], required: d.required !== false };
    }
  }
  if (data.ports !== undefined) {
    for (const p of asList(data.ports)) svc.ports.push(...normalizePort(p, file, where('ports')));
  }
  if (data.volumes !== undefined) {
    for (const v of asList(data.volumes)) svc.volumes.push(normalizeMount(v, dir, file, where('volumes')));
  }
  for (const kind of ['secrets', 'configs'] as const) {
    if (data[kind] === undefined) continue;
    svc[kind] = asList(data[kind]).map((s, i) => {
      if (typeof s === 'string') return s;
      if (isObj(s) && typeof s.source === 'string') return s.source;
      return fail(file, `${where(kind)}[${i}]`, 'must be a name or a mapping with source:');
    });
  }
  return svc;
}

/** A map of KEY → value (either form); an unquoted boolean is refused, as compose does ("true" vs true). */
function toMapAt(v: unknown, file: string, key: string): Record<string, unknown> {
  let map: Record<string, unknown>;
  try {
    map = toMap(v);
  } catch (err) {
    return fail(file, key, (err as Error).message);
  }
  for (const [k, x] of Object.entries(map)) {
    if (typeof x === 'boolean') {
      fail(
        file,
        `${key}.${k}`,
        `${k} is ${x}, a YAML boolean`,
        `quote it ("${x}"): compose takes strings and numbers only`,
      );
    }
  }
  return map;
}

function normalizeBuild(raw: unknown, dir: string, file: string, key: string): ComposeBuildModel {
  const b = typeof raw === 'string' ? { context: raw } : raw;
  if (!isObj(b)) fail(file, key, 'must be a path or a mapping');
  const context = typeof b.context === 'string' && b.context !== '' ? b.context : '.';
  const out: ComposeBuildModel = {
    context: isRemote(context) ? context : posix.resolve(dir, context),
    args: Object.fromEntries(
      Object.entries(toMapAt(b.args, file, `${key}.args`))
        .filter(([, v]) => v !== null && v !== undefined)
        .map(([k, v]) => [k, str(v)]),
    ),
    labels: Object.fromEntries(Object.entries(toMapAt(b.labels, file, `${key}.labels`)).map(([k, v]) => [k, str(v)])),
    platforms: b.platforms === undefined ? [] : asList(b.platforms).map(String),
    secrets: b.secrets === undefined ? [] : asList(b.secrets).map((s) => (isObj(s) ? str(s.source) : str(s))),
    additionalContexts: Object.fromEntries(
      Object.entries(toMapAt(b.additional_contexts, file, `${key}.additional_contexts`)).map(([k, v]) => {
        const s = str(v);
        return [k, isRemote(s) || s.includes(':') ? s : posix.resolve(dir, s)];
      }),
    ),
  };
  if (typeof b.dockerfile === 'string') out.dockerfile = b.dockerfile;
  if (typeof b.dockerfile_inline === 'string') out.dockerfileInline = b.dockerfile_inline;
  if (out.dockerfile && out.dockerfileInline)
    fail(file, key, 'dockerfile and dockerfile_inline are mutually exclusive');
  if (b.target !== undefined && b.target !== null) out.target = str(b.target);
  return out;
}

function normalizePort(p: unknown, file: string, key: string): PortModel[] {
  if (isObj(p)) {
    const out: PortModel = { target: Number(p.target), protocol: str(p.protocol || 'tcp') };
    if (p.published !== undefined && p.published !== null && p.published !== '') out.published = str(p.published);
    if (typeof p.host_ip === 'string' && p.host_ip) out.hostIp = p.host_ip;
    if (!Number.isInteger(out.target)) fail(file, key, `port ${JSON.stringify(p)} has no numeric target`);
    return [out];
  }
  const s = str(p);
  const m = /^(?:(?:\[([^\]]+)\]|([^:]+)):)??(?:([\d-]*):)?([\d-]+)(?:\/(tcp|udp|sctp))?$/.exec(s);
  if (!m) fail(file, key, `'${s}' is not a port (HOST_IP:PUBLISHED:TARGET/PROTOCOL)`);
  const [, ip6, ip4, published, target, protocol] = m;
  const targets = rangeOf(target!);
  const pubs = published ? rangeOf(published) : [];
  if (pubs.length > 1 && pubs.length !== targets.length) fail(file, key, `'${s}': port ranges differ in length`);
  return targets.map((t, i) => {
    const out: PortModel = { target: t, protocol: protocol ?? 'tcp' };
    if (pubs.length > 0) out.published = String(pubs.length === 1 && targets.length > 1 ? `${published}` : pubs[i]);
    const ip = ip6 ?? ip4;
    if (ip) out.hostIp = ip;
    return out;
  });
}

function rangeOf(s: string): number[] {
  const [a, b] = s.split('-').map(Number);
  if (b === undefined) return [a!];
  return Array.from({ length: b - a! + 1 }, (_, i) => a! + i);
}

function normalizeMount(v: unknown, dir: string, file: string, key: string): MountModel {
  if (isObj(v)) {
    const type = str(v.type || 'volume');
    const out: MountModel = { type, target: str(v.target), readOnly: v.read_only === true };
    if (typeof v.source === 'string' && v.source) out.source = type === 'bind' ? hostPath(v.source, dir) : v.source;
    if (!out.target) fail(file, key, `${JSON.stringify(v)} has no target`);
    return out;
  }
  const s = str(v);
  const parts = s.split(':');
  if (parts.length === 1) return { type: 'volume', target: parts[0]!, readOnly: false };
  const [source, target, mode = ''] = parts as [string, string, string?];
  const readOnly = mode.split(',').includes('ro');
  if (isPathSource(source)) return { type: 'bind', source: hostPath(source, dir), target, readOnly };
  return { type: 'volume', source, target, readOnly };
}

function hostPath(source: string, dir: string): string {
  return source.startsWith('~') ? source : posix.resolve(dir, source);
}

function namedObjects(v: unknown): Record<string, { external: boolean }> {
  if (!isObj(v)) return {};
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, { external: isObj(x) && !!x.external }]));
}

function fileObjects(v: unknown, dir: string): Record<string, FileObjectModel> {
  if (!isObj(v)) return {};
  return Object.fromEntries(
    Object.entries(v).map(([k, x]) => {
      const o: FileObjectModel = { external: isObj(x) && !!x.external };
      if (isObj(x) && typeof x.file === 'string') o.file = posix.resolve(dir, x.file);
      if (isObj(x) && typeof x.environment === 'string') o.environment = x.environment;
      return [k, o];
    }),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// compose's own output

/**
 * The model of what `docker compose config --format json` (v2) or `docker-compose config` (v1, YAML) printed.
 * Both print the resolved project (absolute paths, env_file folded into environment, `$` escaped as `$$`).
 */
export function fromComposeConfig(
  config: unknown,
  opts: { projectDir: string; name: string; profiles: string[] },
): ComposeModel {
  if (!isObj(config))
    throw new LadingError('compose config printed no project', 'run compose config by hand to see why');
  const unescaped = unescapeTree(config) as Obj;
  const services: Record<string, ComposeServiceModel> = {};
  for (const [name, data] of Object.entries(isObj(unescaped.services) ? unescaped.services : {})) {
    if (!isObj(data)) continue;
    const { env_file: envFile, ...rest } = data;
    const svc = normalizeService(name, rest, opts.projectDir, 'compose config', {}, undefined, opts.profiles);
    if (envFile !== undefined) {
      svc.envFiles = asList(envFile).map((e) =>
        isObj(e) ? { path: str(e.path), required: e.required !== false } : { path: str(e), required: true },
      );
    }
    services[name] = svc;
  }
  return {
    name: typeof unescaped.name === 'string' ? unescaped.name : opts.name,
    projectDir: opts.projectDir,
    services,
    volumes: namedObjects(unescaped.volumes),
    secrets: fileObjects(unescaped.secrets, opts.projectDir),
    configs: fileObjects(unescaped.configs, opts.projectDir),
    profiles: opts.profiles,
  };
}

function unescapeTree(v: unknown): unknown {
  if (typeof v === 'string') return v.replace(/\$\$/g, '$');
  if (Array.isArray(v)) return v.map(unescapeTree);
  if (isObj(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unescapeTree(x)]));
  return v;
}
