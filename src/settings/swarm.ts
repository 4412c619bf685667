import { parseChoice, parseInteger } from '../lib/inputs.ts';
import { DEFAULT_POLICY, type SwarmUpdatePolicy } from '../lib/swarm-plan.ts';
import { InputError } from '../lib/errors.ts';
import type { InputReader } from '../lib/tag-settings.ts';
import { type DeploySettings, readDeploySettings } from './deploy.ts';

export type Target = 'compose' | 'swarm';
export const readTarget = (read: InputReader): Target =>
  parseChoice('target', read('target'), ['compose', 'swarm'] as const, 'compose');

export interface SwarmSettings {
  deploy: DeploySettings;
  policy: SwarmUpdatePolicy;
  /** DOCKER_HOST of the manager: on the SSH host, or (without hosts) on this machine. */
  dockerHost?: string;
  /** No hosts: the manager is docker-host, driven from this machine. */
  local: boolean;
}

export async function readSwarmSettings(
  read: InputReader,
  env: Record<string, string | undefined>,
): Promise<SwarmSettings> {
  const dockerHost = read('docker-host');
  if (dockerHost && !/^(unix|tcp|ssh|npipe):\/\/\S+$/.test(dockerHost)) {
    throw new InputError('docker-host', `'${dockerHost}' is not a docker endpoint`, 'use unix://…, tcp://… or ssh://…');
  }
  const local = !read('hosts') && !read('inventory');
  if (local && !dockerHost) {
    throw new InputError(
      'hosts',
      'target swarm needs a manager: none given',
      'list a manager in hosts (reached over SSH), or set docker-host to a DOCKER_HOST this machine reaches',
    );
  }
  // Without hosts nothing goes over SSH: the shared reader's SSH inputs are not needed.
  const reader: InputReader = local
    ? (n) =>
        n === 'hosts'
          ? 'localhost'
          : n === 'ssh-key' || n === 'known-hosts'
            ? (read(n) ?? 'not-used-without-ssh')
            : read(n)
    : read;
  const deploy = await readDeploySettings(reader, env);
  if (local) deploy.hosts = [{ label: dockerHost!, host: 'localhost', port: 22, user: 'local' }];
  const policy: SwarmUpdatePolicy = {
    parallelism: parseInteger('update-parallelism', read('update-parallelism'), DEFAULT_POLICY.parallelism, {
      min: 0,
      max: 1000,
    }),
    delay: parseInteger('update-delay', read('update-delay'), DEFAULT_POLICY.delay, { min: 0, max: 3600 }),
    monitor: parseInteger('update-monitor', read('update-monitor'), DEFAULT_POLICY.monitor, { min: 1, max: 3600 }),
    order: parseChoice(
      'update-order',
      read('update-order'),
      ['auto', 'start-first', 'stop-first'] as const,
      DEFAULT_POLICY.order,
    ),
    rollback: deploy.rollbackOnFailure,
  };
  const s: SwarmSettings = { deploy, policy, local };
  if (dockerHost) s.dockerHost = dockerHost;
  return s;
}
