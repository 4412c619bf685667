import { readInputs } from '../lib/input-values.ts';
import type { SwarmUpdatePolicy } from '../lib/swarm-plan.ts';
import { InputError } from '../lib/errors.ts';
import type { InputReader } from '../lib/tag-settings.ts';
import type { SwarmSettings, Target } from '../stages/host/types.ts';
import { readDeploySettings } from './deploy.ts';

export type { SwarmSettings, Target } from '../stages/host/types.ts';

export const readTarget = (read: InputReader): Target => readInputs(read, ['target']).target;

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
  // Without hosts nothing goes over SSH: no SSH input is needed.
  const deploy = await readDeploySettings(read, env, { local });
  if (local) deploy.hosts = [{ label: dockerHost!, host: 'localhost', port: 22, user: 'local' }];
  const u = readInputs(read, ['update-parallelism', 'update-delay', 'update-monitor', 'update-order']);
  const policy: SwarmUpdatePolicy = {
    parallelism: u['update-parallelism'],
    delay: u['update-delay'],
    monitor: u['update-monitor'],
    order: u['update-order'],
    rollback: deploy.rollbackOnFailure,
  };
  const s: SwarmSettings = { deploy, policy, local };
  if (dockerHost) s.dockerHost = dockerHost;
  return s;
}
