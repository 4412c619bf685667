import type { AuthSettings } from '../../io/registry-auth.ts';
import type { SshSettings } from '../../io/host-session.ts';
import type { PolicyAllow, PolicyMode } from '../../lib/compose-policy.ts';
import type { HostSpec, parseHistory } from '../../lib/deploy-plan.ts';
import type { parseProviderOverrides } from '../../lib/registry.ts';
import type { SwarmUpdatePolicy } from '../../lib/swarm-plan.ts';
import type { Connector, HostSession } from '../../io/host-session.ts';
import type { StoreOptions } from '../../io/store.ts';
import type { Reporter } from '../../io/reporter.ts';
import type { Manifest } from '../../lib/manifest.ts';
import type { HookInputs } from '../../lib/hooks.ts';
import type { RollingSettings } from '../rolling.ts';
import type { HookOutcome } from '../hooks.ts';
import type { ImageFetch } from './images.ts';

/** The adapters a host-facing stage works through: what it reaches, and its clock. */
export interface HostDeps {
  /** Opens a session to a host (SSH, this machine, a fake). */
  connector: Connector;
  /** Release ids and history times. */
  now: () => Date;
  /** Short-lived registry logins for the hosts, minted on the runner (the registry client). */
  logins: (
    manifest: Manifest,
    settings: Pick<DeploySettings, 'auth' | 'overrides'>,
    reporter: Reporter,
  ) => Promise<Record<string, string>>;
  /** Registry-less images: fetched from the store once per stage, verified, and sent to hosts. */
  shipper: (store: StoreOptions, reporter: Reporter, fetch: ImageFetch) => ImageShip;
  /** Waits between polls (a swarm converging). */
  sleep: (ms: number) => Promise<void>;
}

/** What the stages need of an image shipper (ImageShipper in ./images.ts). */
export interface ImageShip {
  ensure(
    manifest: Manifest,
    host: { label: string; dir: string; session: Pick<HostSession, 'uploadFile'> },
    run: (name: string, extra: Record<string, string>) => Promise<string>,
  ): Promise<unknown>;
  close(): Promise<void>;
}

/** What every host-facing stage (deploy, rollback, releases; compose and swarm) is given. */
export interface HostStageOptions {
  /** Parsed at the edge (src/settings/host.ts): the stage never reads a raw input. */
  settings: HostSettings;
  reporter: Reporter;
  /** Its adapters (hostDeps in ./deps.ts builds the real ones at the edge; fakes in unit tests). */
  deps: HostDeps;
}

/** A deploy: the host settings and the manifest, read once at the edge. */
export interface DeployStageOptions extends HostStageOptions {
  manifest: Manifest;
}

/** How registry-less images reach a host: read from the store (these endpoints), sent over SSH or fetched by URL. */
export interface ShippingSettings {
  store: StoreOptions;
  fetch: ImageFetch;
}

/** The typed settings of every host-facing stage, parsed once at the edge (src/settings/host.ts). */
export interface HostSettings {
  target: Target;
  /** The hosts, SSH, lock, health and rollout settings (for swarm: the manager's, `swarm.deploy`). */
  deploy: DeploySettings;
  /** Target swarm: the stack's update policy and how its manager is reached. */
  swarm?: SwarmSettings;
  rolling: RollingSettings;
  shipping: ShippingSettings;
  hooks: HookInputs;
  /** Rollback: previous, a release id, a tag or a sha. */
  rollbackTo: string;
}

export interface MaintenanceSettings {
  on: boolean;
  /** The page answered with 503 (on): the maintenance-page text or file. */
  page?: string;
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

/** The deploy's typed settings (compose and swarm; rollback and releases read the same ones). */
export interface DeploySettings {
  hosts: HostSpec[];
  ssh: SshSettings;
  root: string;
  project?: string;
  keep: number;
  /** Remove the images only pruned releases pinned (those no kept release and no container uses). */
  pruneImages: boolean;
  /** compose-secrets: written to the release's 0600 .env, never to the manifest. */
  composeSecrets: Record<string, string>;
  /** compose-env (+ compose-env-file): values for the manifest's compose-env names, to the 0600 .env like secrets. */
  composeEnv: Record<string, string>;
  lockTtl: number;
  lockWait: number;
  healthTimeout: number;
  healthStable: number;
  probeUrl?: string;
  stepTimeoutMs: number;
  maxParallel: number;
  failFast: boolean;
  /** Hosts that may fail (or roll back) before no further batch starts (fail-fast = 0). */
  maxFailures: number;
  /** Hosts deployed first, on their own; any failure among them stops the rollout. */
  canary: number;
  rollbackOnFailure: boolean;
  allowDowngrade: boolean;
  /** compose-policy: strict refuses privileged services, host namespaces and host-root bind mounts before any host. */
  composePolicy: { mode: PolicyMode; allow: Set<PolicyAllow> };
  owner: string;
  /** The lock's owner token: the run id and a random part, unique to this deploy (matrix jobs share a run id). */
  lockOwner?: string;
  auth: Omit<AuthSettings, 'mask' | 'log'>;
  overrides: ReturnType<typeof parseProviderOverrides>;
}

export type Target = 'compose' | 'swarm';

export interface SwarmSettings {
  deploy: DeploySettings;
  policy: SwarmUpdatePolicy;
  /** DOCKER_HOST of the manager: on the SSH host, or (without hosts) on this machine. */
  dockerHost?: string;
  /** No hosts: the manager is docker-host, driven from this machine. */
  local: boolean;
}
