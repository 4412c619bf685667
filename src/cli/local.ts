import { LocalSession } from '../io/local-host.ts';
import type { InputReader } from '../lib/input-values.ts';
import type { HostDeps } from '../stages/host/types.ts';
import { sshConnector } from '../io/ssh-connector.ts';
import { readTarget } from '../settings/swarm.ts';
import { hostDeps } from '../stages/host/deps.ts';

/**
 * Where a host command runs. A pull-mode host (the agent deploys there, nothing reaches it over SSH) sees its own
 * releases: `--root` given and no `--hosts`/`--inventory` (compose target) → this machine, through a local shell and
 * the local docker, the way the agent itself deploys. Swarm already does this with `--docker-host`. Anything else
 * → SSH, as before (a missing --hosts still fails there, naming the flag).
 */
export function hereOrOverSsh(read: InputReader): { read: InputReader; deps: HostDeps; local: boolean } {
  const local = readTarget(read) === 'compose' && !read('hosts') && !read('inventory') && !!read('root');
  if (!local) return { read, deps: hostDeps(sshConnector), local };
  const here: Record<string, string> = {
    hosts: 'localhost',
    // The local session neither reads nor needs SSH settings; the host-settings reader insists on them.
    'ssh-key': 'local session',
    'known-hosts': 'local session',
  };
  return {
    read: (name) => here[name] ?? read(name),
    deps: hostDeps(async () => new LocalSession(process.env)),
    local,
  };
}
