import { LocalSession } from '../io/local-host.ts';
import type { InputReader } from '../lib/input-values.ts';
import { sshConnector } from '../io/ssh-connector.ts';
import { type HostSettings, readHostSettings } from '../settings/host.ts';
import { readTarget } from '../settings/swarm.ts';
import { hostDeps } from '../stages/host/deps.ts';
import type { HostDeps } from '../stages/host/types.ts';

/**
 * Where a host command runs, and its settings. A pull-mode host (the agent deploys there, nothing reaches it over
 * SSH) sees its own releases: `--root` given and no `--hosts`/`--inventory` (compose target) → this machine, through a
 * local shell and the local docker, the way the agent itself deploys. Swarm already does this with `--docker-host`.
 * Anything else → SSH, as before (a missing --hosts still fails there, naming the flag).
 */
export async function hereOrOverSsh(
  read: InputReader,
  env: Record<string, string | undefined> = process.env,
): Promise<{ settings: HostSettings; deps: HostDeps }> {
  const local = readTarget(read) === 'compose' && !read('hosts') && !read('inventory') && !!read('root');
  return {
    settings: await readHostSettings(read, env, { local }),
    deps: hostDeps(local ? async () => new LocalSession(env) : sshConnector),
  };
}
