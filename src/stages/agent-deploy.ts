import { LocalSession } from '../io/local-host.ts';
import type { AgentConfig } from '../lib/agent-config.ts';
import type { Manifest } from '../lib/manifest.ts';
import { runDeployStage } from './deploy.ts';
import type { DeployResult, HostSettings } from './host/types.ts';
import type { Reporter } from '../io/reporter.ts';
import { hostDeps } from './host/deps.ts';

/**
 * One manifest deployed on this machine by the deploy stage itself (runDeployStage with a LocalSession: lock,
 * release dir, pull, up, health gate, rollback, history — the very steps an SSH deploy runs), with the agent's
 * config as the deploy stage's typed settings.
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

/** Deploys `manifest` here: the host steps run on the local docker (the config's docker-host, or the env's). */
export async function deployHere(
  cfg: AgentConfig,
  manifest: Manifest,
  opts: { settings: HostSettings; reporter: Reporter; env: NodeJS.ProcessEnv; now?: () => Date },
): Promise<DeployResult> {
  const dockerHost = cfg.deploy.dockerHost;
  const sessionEnv = { ...opts.env, ...(dockerHost ? { DOCKER_HOST: dockerHost } : {}) };
  const { settings } = opts;
  if (settings.deploy.auth.password) opts.reporter.secret(settings.deploy.auth.password);
  return runDeployStage({
    settings,
    manifest,
    reporter: opts.reporter,
    deps: hostDeps(async () => new LocalSession(sessionEnv), opts.now ? { now: opts.now } : {}),
  });
}
