import type { Connector } from '../../io/host-session.ts';
import type { Reporter } from '../../io/reporter.ts';
import type { parseHistory } from '../../lib/deploy-plan.ts';
import type { Manifest } from '../../lib/manifest.ts';
import type { InputReader } from '../../lib/tag-settings.ts';
import type { HookOutcome } from '../hooks.ts';

/** What every host-facing stage (deploy, rollback, releases; compose and swarm) is given. */
export interface HostStageOptions {
  read: InputReader;
  env: Record<string, string | undefined>;
  reporter: Reporter;
  connector: Connector;
  now?: () => Date;
  /** The manifest to deploy when the caller has read it already (the action, for its GitHub Deployment); else the
   * deploy stages read the `manifest` input. */
  manifest?: Manifest;
}

export interface HostResult {
  host: string;
  status: 'deployed' | 'rolled-back' | 'failed' | 'skipped';
  release?: string;
  previous?: string;
  error?: string;
  seconds: number;
}

export interface DeployResult {
  release: string;
  hosts: HostResult[];
  ok: boolean;
  /** The deploy hooks that ran (src/stages/hooks.ts), in order. */
  hooks?: HookOutcome[];
}

export interface HostReleases {
  host: string;
  current?: string;
  releases: string[];
  history: ReturnType<typeof parseHistory>;
  error?: string;
}
