import { createHash } from 'node:crypto';
import { parse } from 'yaml';
import { checkProbeUrl, checkProject, checkRoot } from './deploy-plan.ts';
import { InputError } from './errors.ts';
import { isValidTag, parseImageName } from './image-ref.ts';
import { INPUTS } from './input-table.ts';
import { ENV_NAME_RE, parseSize } from './inputs.ts';
import type { Manifest } from './manifest.ts';
import { REGISTRY_KINDS, type RegistryKind } from './registry-events.ts';
import {
  type ObjectLocation,
  parseObjectLocation,
  parseStoreLocation,
  type StoreLocation,
  storeKeys,
} from './store-location.ts';

/**
 * `lading agent --config agent.yml`: one YAML file says which channel a host follows, where its manifest is
 * published, how to deploy it here (the deploy stage's own settings) and how the agent hears about new ones
 * (polling, a signed webhook, or both). Parsed once into a typed value; every error names the key to fix.
 */

export interface ManifestSourceConfig {
  /** Where the channel's manifest is read: a store object (s3/gcs/file) or an https URL (unless registry). */
  location?: ObjectLocation;
  /**
   * Or: the manifest as an OCI artifact in a registry, `host/repo:tag` (tag default: the channel); its digest is
   * the cheap change check, the lading manifest is the artifact's layer of media type MANIFEST_ARTIFACT_TYPE.
   */
  registry?: { host: string; repository: string; tag: string; ref: string };
  /** The store folder it was derived from (store: form), for webhook locations in the same bucket. */
  store?: StoreLocation;
  endpoint?: string;
  region?: string;
  forcePathStyle?: boolean;
  gcsEndpoint?: string;
  /**
   * The manifest-secret a manifest must be signed with (`<manifest>.sig`, HMAC-SHA256), from a file or an env var,
   * never in the config text: unsigned or mismatching manifests are logged and not deployed.
   */
  secretFile?: string;
  secretEnv?: string;
}

export interface AgentDeployConfig {
  root: string;
  project?: string;
  healthTimeout: number;
  healthStable: number;
  probeUrl?: string;
  keepReleases: number;
  rollback: boolean;
  allowDowngrade: boolean;
  lockTtl: number;
  lockWait: number;
  stepTimeout: number;
  /** DOCKER_HOST for the host steps (default: the agent's own environment). */
  dockerHost?: string;
  /** An env file (KEY=VALUE) with the values of the manifests' compose-env names, readable only by the agent. */
  envFile?: string;
}

export interface AgentRegistryConfig {
  /** The registry host the login is for (no other registry receives it). */
  host?: string;
  /** Names of env vars holding the registry login, never the values. */
  usernameEnv?: string;
  passwordEnv?: string;
  googleCredentialsFile?: string;
  awsRegion?: string;
  providers: string[];
}

/** A registry's own push webhook (Docker Hub, distribution/GitLab, Harbor, GitHub registry_package). */
export interface RegistryHookConfig {
  kind: RegistryKind;
  /** URL path; Docker Hub's token is the segment after it (`<path>/<token>`). */
  path: string;
  /** The token (dockerhub), the whole Authorization header value (distribution, harbor), or the GitHub secret. */
  secretFile?: string;
  secretEnv?: string;
  /** Repositories as the registry names them (`acme/web`), without the host. */
  repositories: string[];
  /** Tags the channel follows (`*` at the end matches any rest); default: the channel name. */
  tags: string[];
  /**
   * manifest: deploy the manifest the build published for that tag (the manifest store's by-tag entry) once it pins
   * the pushed digest; pin: redeploy the current release with only that service's image re-pinned.
   */
  update: 'manifest' | 'pin';
  /** Docker Hub: callback_url must start with this (default https://registry.hub.docker.com/). */
  callbackPrefix: string;
}

export interface WebhookConfig {
  host: string;
  port: number;
  /** lading's own signed notifications (lading notify / notify-url), when a secret is given. */
  path: string;
  tlsCert?: string;
  tlsKey?: string;
  secretFile?: string;
  secretEnv?: string;
  maxBody: number;
  timestampWindow: number;
  registries: RegistryHookConfig[];
}

export interface AgentConfig {
  channel: string;
  manifest: ManifestSourceConfig;
  deploy: AgentDeployConfig;
  registry: AgentRegistryConfig;
  poll?: { interval: number };
  webhook?: WebhookConfig;
  /** Where the agent remembers what it has deployed or tried (so a failed manifest is not retried forever). */
  stateFile: string;
  /** Lock owner and history `run` of the agent's deploys. */
  runId: string;
}

const CHANNEL_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

type Obj = Record<string, unknown>;

function section(parent: Obj, key: string, path: string, required: boolean): Obj | undefined {
  const v = parent[key];
  if (v === undefined || v === null) {
    if (required) throw new InputError(`${path}${key}`, 'is missing');
    return undefined;
  }
  if (typeof v !== 'object' || Array.isArray(v)) throw new InputError(`${path}${key}`, 'must be a mapping of keys');
  return v as Obj;
}

function known(obj: Obj, keys: string[], path: string): void {
  for (const k of Object.keys(obj)) {
    if (!keys.includes(k)) {
      throw new InputError(`${path}${k}`, 'is not a known key', `known keys here: ${keys.join(', ')}`);
    }
  }
}

function str(obj: Obj, key: string, path: string): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' && typeof v !== 'number') throw new InputError(`${path}${key}`, 'must be a string');
  const s = String(v).trim();
  return s === '' ? undefined : s;
}

function int(obj: Obj, key: string, path: string, fallback: number, min: number, max: number): number {
  const v = obj[key];
  if (v === undefined || v === null) return fallback;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isInteger(n)) throw new InputError(`${path}${key}`, `'${String(v)}' is not a whole number`);
  if (n < min || n > max) throw new InputError(`${path}${key}`, `${n} is out of range`, `use ${min} to ${max}`);
  return n;
}

/** A number of the deploy section: its default and bounds are the deploy input's, from the table of inputs. */
function deployInt(
  obj: Obj,
  key: 'health-timeout' | 'health-stable' | 'keep-releases' | 'lock-ttl' | 'lock-wait' | 'step-timeout',
  path: string,
): number {
  const row = INPUTS[key];
  return int(obj, key, path, row.default, row.min, row.max);
}

function bool(obj: Obj, key: string, path: string, fallback: boolean): boolean {
  const v = obj[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v === 'boolean') return v;
  throw new InputError(`${path}${key}`, `'${String(v)}' is not true or false`);
}

function envName(obj: Obj, key: string, path: string): string | undefined {
  const v = str(obj, key, path);
  if (v !== undefined && !ENV_NAME_RE.test(v)) {
    throw new InputError(
      `${path}${key}`,
      `'${v}' is not an environment variable name`,
      'name the variable, not its value',
    );
  }
  return v;
}

function absPath(obj: Obj, key: string, path: string): string | undefined {
  const v = str(obj, key, path);
  if (v !== undefined && !v.startsWith('/')) throw new InputError(`${path}${key}`, `'${v}' must be an absolute path`);
  return v;
}

/** host:port, [v6]:port or :port (all interfaces); port 0 picks a free port. */
export function parseListen(name: string, raw: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([A-Za-z0-9.-]*)):(\d{1,5})$/.exec(raw);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new InputError(name, `'${raw}' is not host:port`, 'write e.g. 0.0.0.0:8443, 127.0.0.1:9000 or [::1]:9000');
  }
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

/** The media type of the layer holding the lading manifest in an OCI artifact. */
export const MANIFEST_ARTIFACT_TYPE = 'application/vnd.lading.manifest.v1+json';

function registryRef(input: string, raw: string, channel: string): NonNullable<ManifestSourceConfig['registry']> {
  const at = raw.lastIndexOf(':');
  const hasTag = at > raw.lastIndexOf('/');
  const name = hasTag ? raw.slice(0, at) : raw;
  const tag = hasTag ? raw.slice(at + 1) : channel;
  const { registry, path } = parseImageName(name, input);
  if (!registry) {
    throw new InputError(input, `'${raw}' names no registry host`, 'write host[:port]/repository[:tag]');
  }
  if (!isValidTag(tag)) throw new InputError(input, `'${tag}' is not a valid tag`);
  return { host: registry, repository: path, tag, ref: `${registry}/${path}:${tag}` };
}

function manifestSource(obj: Obj, channel: string): ManifestSourceConfig {
  const p = 'manifest.';
  known(
    obj,
    ['store', 'url', 'registry', 'endpoint', 'region', 'path-style', 'gcs-endpoint', 'secret-file', 'secret-env'],
    p,
  );
  const signed = secretSource(obj, p, false);
  const store = str(obj, 'store', p);
  const url = str(obj, 'url', p);
  const registry = str(obj, 'registry', p);
  const given = [store, url, registry].filter(Boolean).length;
  if (given !== 1) {
    throw new InputError(
      'manifest',
      given ? 'names more than one of store, url and registry' : 'names no location',
      'set one of store: (s3://bucket/prefix, gs://bucket/prefix or /dir, where the build publishes), url: (https://…) or registry: (host/repo:tag)',
    );
  }
  if (registry) {
    if (signed.secretFile || signed.secretEnv) {
      throw new InputError(
        `${p}${signed.secretFile ? 'secret-file' : 'secret-env'}`,
        'is set with manifest.registry, whose artifact carries no detached signature',
        'follow the manifest store (store:) or an https url: where the manifest step publishes <manifest>.sig',
      );
    }
    return { registry: registryRef(`${p}registry`, registry, channel) };
  }
  const out: ManifestSourceConfig = store
    ? (() => {
        const folder = parseStoreLocation(`${p}store`, store);
        const key = storeKeys.manifestChannel(folder.prefix, channel);
        return {
          store: folder,
          location:
            folder.kind === 'file'
              ? { kind: 'file', bucket: folder.bucket, key }
              : { kind: folder.kind, bucket: folder.bucket, key },
        };
      })()
    : { location: parseObjectLocation(`${p}url`, url!) };
  if (url && out.location!.kind !== 'https') {
    throw new InputError(`${p}url`, `'${url}' is not an http(s) URL`, 'use store: for s3://, gs:// and directories');
  }
  const endpoint = str(obj, 'endpoint', p);
  if (endpoint) {
    if (!/^https?:\/\/\S+$/.test(endpoint)) throw new InputError(`${p}endpoint`, `'${endpoint}' is not an http(s) URL`);
    out.endpoint = endpoint;
  }
  const region = str(obj, 'region', p);
  if (region) out.region = region;
  if (obj['path-style'] !== undefined) out.forcePathStyle = bool(obj, 'path-style', p, true);
  const gcs = str(obj, 'gcs-endpoint', p);
  if (gcs) out.gcsEndpoint = gcs;
  return Object.assign(out, signed);
}

function deploySection(obj: Obj): AgentDeployConfig {
  const p = 'deploy.';
  known(
    obj,
    [
      'root',
      'project',
      'health-timeout',
      'health-stable',
      'probe-url',
      'keep-releases',
      'rollback',
      'allow-downgrade',
      'lock-ttl',
      'lock-wait',
      'step-timeout',
      'docker-host',
      'env-file',
    ],
    p,
  );
  const root = checkRoot(`${p}root`, str(obj, 'root', p) ?? INPUTS.root.default);
  const out: AgentDeployConfig = {
    root,
    healthTimeout: deployInt(obj, 'health-timeout', p),
    healthStable: deployInt(obj, 'health-stable', p),
    keepReleases: deployInt(obj, 'keep-releases', p),
    rollback: bool(obj, 'rollback', p, INPUTS.rollback.default),
    allowDowngrade: bool(obj, 'allow-downgrade', p, INPUTS['allow-downgrade'].default),
    lockTtl: deployInt(obj, 'lock-ttl', p),
    lockWait: deployInt(obj, 'lock-wait', p),
    stepTimeout: deployInt(obj, 'step-timeout', p),
  };
  const project = str(obj, 'project', p);
  if (project) out.project = checkProject(`${p}project`, project);
  const probe = str(obj, 'probe-url', p);
  if (probe) out.probeUrl = checkProbeUrl(`${p}probe-url`, probe);
  const envFile = absPath(obj, 'env-file', p);
  if (envFile) out.envFile = envFile;
  const dockerHost = str(obj, 'docker-host', p);
  if (dockerHost) {
    if (!/^(unix|tcp|ssh|npipe):\/\/\S+$/.test(dockerHost)) {
      throw new InputError(
        `${p}docker-host`,
        `'${dockerHost}' is not a DOCKER_HOST`,
        'write unix:///var/run/docker.sock or tcp://host:2376',
      );
    }
    out.dockerHost = dockerHost;
  }
  return out;
}

function registrySection(obj: Obj | undefined): AgentRegistryConfig {
  const p = 'registry.';
  if (!obj) return { providers: [] };
  known(obj, ['host', 'username-env', 'password-env', 'google-credentials-file', 'aws-region', 'providers'], p);
  const out: AgentRegistryConfig = { providers: [] };
  const u = envName(obj, 'username-env', p);
  const w = envName(obj, 'password-env', p);
  if (!!u !== !!w) {
    throw new InputError(
      `${p}${u ? 'password-env' : 'username-env'}`,
      'is missing while the other one is set',
      'give both, or neither',
    );
  }
  const host = str(obj, 'host', p);
  if (u && !host) {
    throw new InputError(
      `${p}host`,
      'is missing while username-env/password-env are set',
      'name the registry host the login is for (like ghcr.io): it is sent to no other registry',
    );
  }
  if (host) out.host = host;
  if (u) out.usernameEnv = u;
  if (w) out.passwordEnv = w;
  const g = absPath(obj, 'google-credentials-file', p);
  if (g) out.googleCredentialsFile = g;
  const r = str(obj, 'aws-region', p);
  if (r) out.awsRegion = r;
  const providers = obj.providers;
  if (providers !== undefined) {
    if (!Array.isArray(providers) || providers.some((x) => typeof x !== 'string')) {
      throw new InputError(`${p}providers`, 'must be a list of host=provider strings');
    }
    out.providers = providers as string[];
  }
  return out;
}

function secretSource(obj: Obj, p: string, required: boolean): { secretFile?: string; secretEnv?: string } {
  const file = absPath(obj, 'secret-file', p);
  const env = envName(obj, 'secret-env', p);
  if (file && env) throw new InputError(`${p}secret-file`, 'and secret-env are both set', 'give one');
  if (!file && !env && required) {
    throw new InputError(
      `${p}secret-file`,
      'is missing (and so is secret-env)',
      'give one: a file readable only by the agent, or the name of an env var holding the shared secret',
    );
  }
  return { ...(file ? { secretFile: file } : {}), ...(env ? { secretEnv: env } : {}) };
}

function stringList(obj: Obj, key: string, p: string): string[] | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  const list = typeof v === 'string' ? v.split(/[\n,]/) : Array.isArray(v) ? v : undefined;
  if (!list || list.some((x) => typeof x !== 'string')) throw new InputError(`${p}${key}`, 'must be a list of strings');
  return (list as string[]).map((x) => x.trim()).filter(Boolean);
}

const URL_PATH_RE = /^\/[A-Za-z0-9._~/-]*$/;

function registryHook(raw: unknown, i: number, channel: string): RegistryHookConfig {
  const p = `webhook.registries[${i}].`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new InputError(p.slice(0, -1), 'must be a mapping');
  const obj = raw as Obj;
  known(obj, ['kind', 'path', 'secret-file', 'secret-env', 'repositories', 'tags', 'update', 'callback-prefix'], p);
  const kind = str(obj, 'kind', p);
  if (!kind || !REGISTRY_KINDS.includes(kind as RegistryKind)) {
    throw new InputError(`${p}kind`, `'${kind ?? ''}' is not a registry kind`, `use ${REGISTRY_KINDS.join(', ')}`);
  }
  const path = str(obj, 'path', p) ?? `/hooks/${kind}`;
  if (!URL_PATH_RE.test(path) || path.endsWith('/')) throw new InputError(`${p}path`, `'${path}' is not a URL path`);
  const repositories = stringList(obj, 'repositories', p) ?? [];
  if (repositories.length === 0) {
    throw new InputError(`${p}repositories`, 'is empty', 'list the repositories whose pushes deploy here (acme/web)');
  }
  const update = str(obj, 'update', p) ?? 'manifest';
  if (update !== 'manifest' && update !== 'pin') {
    throw new InputError(`${p}update`, `'${update}' is not manifest or pin`);
  }
  const callbackPrefix = str(obj, 'callback-prefix', p) ?? 'https://registry.hub.docker.com/';
  if (!/^https?:\/\/[^/]+\//.test(callbackPrefix)) {
    throw new InputError(`${p}callback-prefix`, `'${callbackPrefix}' is not an http(s) URL ending in a path`);
  }
  return {
    kind: kind as RegistryKind,
    path,
    ...secretSource(obj, p, true),
    repositories,
    tags: stringList(obj, 'tags', p) ?? [channel],
    update,
    callbackPrefix,
  };
}

function webhookSection(obj: Obj, channel: string): WebhookConfig {
  const p = 'webhook.';
  known(
    obj,
    [
      'listen',
      'path',
      'tls-cert',
      'tls-key',
      'secret-file',
      'secret-env',
      'max-body',
      'timestamp-window',
      'registries',
    ],
    p,
  );
  const listen = str(obj, 'listen', p);
  if (!listen) throw new InputError(`${p}listen`, 'is missing', 'write host:port, e.g. 0.0.0.0:8443');
  const { host, port } = parseListen(`${p}listen`, listen);
  const path = str(obj, 'path', p) ?? '/';
  if (!URL_PATH_RE.test(path)) throw new InputError(`${p}path`, `'${path}' is not a URL path`);
  const rawRegistries = obj.registries;
  if (rawRegistries !== undefined && rawRegistries !== null && !Array.isArray(rawRegistries)) {
    throw new InputError(`${p}registries`, 'must be a list');
  }
  const registries = ((rawRegistries as unknown[] | undefined) ?? []).map((r, i) => registryHook(r, i, channel));
  const out: WebhookConfig = {
    host,
    port,
    path,
    maxBody: parseSize(`${p}max-body`, obj['max-body'], 1024 * 1024),
    timestampWindow: int(obj, 'timestamp-window', p, 300, 10, 3600),
    registries,
  };
  const cert = absPath(obj, 'tls-cert', p);
  const key = absPath(obj, 'tls-key', p);
  if (!!cert !== !!key) {
    throw new InputError(
      `${p}${cert ? 'tls-key' : 'tls-cert'}`,
      'is missing while the other one is set',
      'give both the certificate and its key',
    );
  }
  if (cert && key) {
    out.tlsCert = cert;
    out.tlsKey = key;
  } else if (!LOOPBACK.has(host)) {
    throw new InputError(
      `${p}tls-cert`,
      `is missing: the webhook listens on ${host}, and plain HTTP is allowed on loopback only`,
      'give tls-cert and tls-key (PEM files), or listen on 127.0.0.1 behind a TLS proxy',
    );
  }
  // lading's own signed notifications need the shared secret; an agent may listen to registries only.
  Object.assign(out, secretSource(obj, p, registries.length === 0));
  const paths = [...(out.secretFile || out.secretEnv ? [path] : []), ...registries.map((r) => r.path)];
  const dup = paths.find((x, i) => paths.indexOf(x) !== i);
  if (dup) throw new InputError(`${p}registries`, `two endpoints listen on the path ${dup}`, 'give each its own path');
  return out;
}

/**
 * Parses and validates the agent's YAML config. `hostname` makes the default run id. `once` (cron: check the
 * channel once and exit) needs only the channel to read; a long-running agent needs poll: and/or webhook:.
 */
export function parseAgentConfig(
  text: string,
  opts: { hostname?: string; source?: string; once?: boolean } = {},
): AgentConfig {
  let data: unknown;
  try {
    data = parse(text);
  } catch (err) {
    throw new InputError(
      'config',
      `${opts.source ?? 'the config'} is not YAML: ${(err as Error).message.split('\n')[0]}`,
    );
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new InputError(
      'config',
      `${opts.source ?? 'the config'} is not a YAML mapping`,
      'see examples/agent/agent.yml',
    );
  }
  const top = data as Obj;
  known(top, ['channel', 'manifest', 'deploy', 'registry', 'poll', 'webhook', 'state-file', 'run-id'], '');
  const channel = str(top, 'channel', '') ?? 'latest';
  if (!CHANNEL_RE.test(channel))
    throw new InputError('channel', `'${channel}' is not a channel name`, 'use latest, stage, …');
  const deploy = deploySection(section(top, 'deploy', '', false) ?? {});
  const cfg: AgentConfig = {
    channel,
    manifest: manifestSource(section(top, 'manifest', '', true)!, channel),
    deploy,
    registry: registrySection(section(top, 'registry', '', false)),
    stateFile: absPath(top, 'state-file', '') ?? `${deploy.root}/.lading-agent-${channel}.json`,
    runId: (str(top, 'run-id', '') ?? `agent-${opts.hostname ?? 'host'}`).replace(/[^A-Za-z0-9._-]/g, '_'),
  };
  const poll = section(top, 'poll', '', false);
  if (poll) {
    known(poll, ['interval'], 'poll.');
    cfg.poll = { interval: int(poll, 'interval', 'poll.', 60, 1, 86400) };
  }
  const webhook = section(top, 'webhook', '', false);
  if (webhook) cfg.webhook = webhookSection(webhook, channel);
  for (const [i, r] of (cfg.webhook?.registries ?? []).entries()) {
    if (r.update === 'manifest' && !cfg.manifest.store) {
      throw new InputError(
        `webhook.registries[${i}].update`,
        'is manifest, which reads the manifest store (by-tag entries), and manifest: names no store',
        'set manifest.store (where the build publishes, manifest-store), or use update: pin',
      );
    }
    if (r.update === 'pin' && !cfg.deploy.project) {
      throw new InputError(
        `webhook.registries[${i}].update`,
        'is pin, which re-pins the current release of deploy.project, and deploy.project is not set',
        'set deploy.project (the compose project deployed here)',
      );
    }
  }
  if (!cfg.poll && !cfg.webhook && !opts.once) {
    throw new InputError(
      'poll',
      'and webhook are both missing: a running agent needs one way to hear about new manifests',
      'add poll: { interval: 60 } and/or a webhook: section, or run it from cron with --once',
    );
  }
  return cfg;
}

/**
 * What makes two manifests "the same deploy": the pinned images, the compose files and their env. A manifest
 * re-published with only a new `created` time is the same deploy and is not deployed again.
 */
export function manifestIdentity(manifest: Manifest): string {
  const what = {
    images: manifest.images.map((i) => `${i.id}=${i.ref}`).sort(),
    compose: manifest.compose
      ? {
          project: manifest.compose.project ?? '',
          files: manifest.compose.files.map((f) => `${f.path}:${f.sha256}`),
          env: Object.entries(manifest.compose.env).sort(([a], [b]) => (a < b ? -1 : 1)),
          ...(manifest.compose.envNames ? { envNames: [...manifest.compose.envNames].sort() } : {}),
        }
      : null,
    primary: manifest.primary,
  };
  return createHash('sha256').update(JSON.stringify(what)).digest('hex').slice(0, 32);
}

/** The time a manifest stands for when "newest" is decided: its commit time, else when it was written. */
export function manifestTime(manifest: Manifest): number {
  const t = Date.parse(manifest.source.commitTime ?? manifest.source.created);
  return Number.isNaN(t) ? 0 : t;
}
