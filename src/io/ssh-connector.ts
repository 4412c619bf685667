import type { Connector, SshSettings } from './host-session.ts';
import type { JumpHosts } from './ssh.ts';

// ssh.ts (and ssh2 with it) is loaded at the first connection, not when an action or command starts.
const ssh = () => import('./ssh.ts');

// One set of shared jump host connections per deploy (its settings object), none across deploys.
const jumps = new WeakMap<SshSettings, JumpHosts>();

/** Hosts reached over SSH with pinned host keys (src/io/ssh.ts); hosts behind a jump host share its connection. */
export const sshConnector: Connector = async (host, settings, log) => {
  const { connect, JumpHosts } = await ssh();
  let shared = jumps.get(settings.ssh);
  if (!shared) jumps.set(settings.ssh, (shared = new JumpHosts()));
  return connect(
    { ...settings.ssh, host: host.host, port: host.port, user: host.user },
    { log: (l) => log.info(l), warn: (l) => log.warning(l) },
    shared,
  );
};
