import { readFileSync } from 'node:fs';
import type { AgentConfig } from '../lib/agent-config.ts';
import { InputError } from '../lib/errors.ts';
import { parseProviderOverrides } from '../lib/registry.ts';
import type { DeploySettings, HostSettings } from '../stages/host/types.ts';
import { ownerOf, readComposeEnv } from './deploy.ts';
import { readHostSettings } from './host.ts';

/**
 * The deploy stage's typed settings for one manifest deployed on this machine: the agent's config where it says
 * something, the table's defaults (src/lib/input-table.ts) for the rest. Built per deploy (a fresh lock token each).
 */
export async function agentHostSettings(cfg: AgentConfig, env: NodeJS.ProcessEnv): Promise<HostSettings> {
  const d = cfg.deploy;
  const defaults = await readHostSettings(() => undefined, {}, { local: true });
  const deploy: DeploySettings = {
    ...defaults.deploy,
    root: d.root,
    healthTimeout: d.healthTimeout,
    healthStable: d.healthStable,
    keep: d.keepReleases,
    rollbackOnFailure: d.rollback,
    allowDowngrade: d.allowDowngrade,
    lockTtl: d.lockTtl,
    lockWait: d.lockWait,
    stepTimeoutMs: d.stepTimeout * 1000,
    ...ownerOf(cfg.runId, {}),
    auth: agentAuth(cfg, env),
    overrides: parseProviderOverrides(cfg.registry.providers.join('\n'), 'registry.providers'),
  };
  if (d.project) deploy.project = d.project;
  // the values of the manifest's compose-env names: read from the agent's own file, never from the manifest
  if (d.envFile) deploy.composeEnv = await readComposeEnv([], [d.envFile], 'deploy.env-file');
  if (d.probeUrl) deploy.probeUrl = d.probeUrl;
  // Registry-less images usually sit in the bucket the manifests come from: reach it the same way.
  const m = cfg.manifest;
  const store = { ...defaults.shipping.store };
  if (m.endpoint) store.endpoint = m.endpoint;
  if (m.region) store.region = m.region;
  if (m.forcePathStyle !== undefined) store.forcePathStyle = m.forcePathStyle;
  if (m.gcsEndpoint) store.gcsEndpoint = m.gcsEndpoint;
  return { ...defaults, deploy, shipping: { ...defaults.shipping, store } };
}

/** The registry login of the agent's deploys: from the env vars the config names, never from the config itself. */
function agentAuth(cfg: AgentConfig, env: NodeJS.ProcessEnv): DeploySettings['auth'] {
  const r = cfg.registry;
  const auth: DeploySettings['auth'] = {};
  if (r.usernameEnv && r.passwordEnv) {
    const u = env[r.usernameEnv];
    const p = env[r.passwordEnv];
    if (!u || !p) {
      throw new InputError(
        `registry.${u ? 'password-env' : 'username-env'}`,
        `the env var ${u ? r.passwordEnv : r.usernameEnv} is empty`,
        'set it in the agent service environment (e.g. an EnvironmentFile)',
      );
    }
    auth.username = u;
    auth.password = p;
    if (r.host) auth.registry = r.host;
  }
  if (r.googleCredentialsFile)
    auth.googleCredentials = readConfigFile('registry.google-credentials-file', r.googleCredentialsFile);
  if (r.awsRegion) auth.awsRegion = r.awsRegion;
  return auth;
}

/** A file the agent's config names, read now (it may be rotated between deploys); an error names the config key. */
function readConfigFile(key: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new InputError(
      key,
      `${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      'make it readable by the user the agent runs as',
    );
  }
}
