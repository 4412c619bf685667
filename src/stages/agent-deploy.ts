import { readFileSync } from 'node:fs';
import { LocalSession } from '../io/local-host.ts';
import type { AgentConfig } from '../lib/agent-config.ts';
import { InputError } from '../lib/errors.ts';
import type { Manifest } from '../lib/manifest.ts';
import { runDeployStage } from './deploy.ts';
import type { DeployResult } from './host/types.ts';
import type { Reporter } from '../io/reporter.ts';
import { hostDeps } from './host/deps.ts';

/**
 * One manifest deployed on this machine by the deploy stage itself (runDeployStage with a LocalSession: lock,
 * release dir, pull, up, health gate, rollback, history — the very steps an SSH deploy runs), with the agent's
 * config translated into the deploy stage's inputs.
 */

/** What became of one manifest the agent was asked to deploy (agent.ts queues, agent-webhook.ts answers with it). */
export type Outcome = 'deployed' | 'rolled-back' | 'failed' | 'skipped';

export interface AgentEvent {
  manifest: string;
  identity: string;
  outcome: Outcome;
  origin: string;
  release?: string;
  error?: string;
}

/** The deploy stage's inputs for one manifest deployed on this machine. */
export function deployInputs(cfg: AgentConfig, manifest: Manifest, env: NodeJS.ProcessEnv): Record<string, string> {
  const d = cfg.deploy;
  const inputs: Record<string, string> = {
    manifest: JSON.stringify(manifest),
    hosts: 'localhost',
    // The local session neither reads nor needs SSH settings; the deploy stage's reader insists on them.
    'ssh-key': 'local session',
    'known-hosts': 'local session',
    root: d.root,
    'health-timeout': String(d.healthTimeout),
    'health-stable': String(d.healthStable),
    'keep-releases': String(d.keepReleases),
    rollback: String(d.rollback),
    'allow-downgrade': String(d.allowDowngrade),
    'lock-ttl': String(d.lockTtl),
    'lock-wait': String(d.lockWait),
    'step-timeout': String(d.stepTimeout),
    'run-id': cfg.runId,
  };
  if (d.project) inputs.project = d.project;
  if (d.probeUrl) inputs['probe-url'] = d.probeUrl;
  // the values of the manifest's compose-env names: read by the deploy from the agent's own file, never the manifest
  if (d.envFile) inputs['compose-env-file'] = d.envFile;
  const r = cfg.registry;
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
    inputs.username = u;
    inputs.password = p;
    if (r.host) inputs.registry = r.host;
  }
  if (r.googleCredentialsFile) inputs['google-credentials'] = readFileSync(r.googleCredentialsFile, 'utf8');
  if (r.awsRegion) inputs['aws-region'] = r.awsRegion;
  if (r.providers.length) inputs['registry-providers'] = r.providers.join('\n');
  // Registry-less images usually sit in the bucket the manifests come from: reach it the same way.
  const m = cfg.manifest;
  if (m.endpoint) inputs['s3-endpoint'] = m.endpoint;
  if (m.region) inputs['s3-region'] = m.region;
  if (m.forcePathStyle !== undefined) inputs['s3-path-style'] = String(m.forcePathStyle);
  if (m.gcsEndpoint) inputs['gcs-endpoint'] = m.gcsEndpoint;
  return inputs;
}

/** Deploys `manifest` here: the host steps run on the local docker (the config's docker-host, or the env's). */
export async function deployHere(
  cfg: AgentConfig,
  manifest: Manifest,
  opts: { reporter: Reporter; env: NodeJS.ProcessEnv; now?: () => Date },
): Promise<DeployResult> {
  const dockerHost = cfg.deploy.dockerHost;
  const sessionEnv = { ...opts.env, ...(dockerHost ? { DOCKER_HOST: dockerHost } : {}) };
  const inputs = deployInputs(cfg, manifest, opts.env);
  if (inputs.password) opts.reporter.secret(inputs.password);
  return runDeployStage({
    read: (n) => inputs[n] || undefined,
    env: {},
    reporter: opts.reporter,
    deps: hostDeps(async () => new LocalSession(sessionEnv), opts.now ? { now: opts.now } : {}),
  });
}
