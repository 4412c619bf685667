import { connect, JumpHosts } from '../io/ssh.ts';
import type { Connector, SshSettings } from './deploy.ts';

// One set of shared jump host connections per deploy (its settings object), none across deploys.
const jumps = new WeakMap<SshSettings, JumpHosts>();

/** Hosts reached over SSH with pinned host keys (src/io/ssh.ts); hosts behind a jump host share its connection. */
export const sshConnector: Connector = async (host, settings, reporter) => {
  let shared = jumps.get(settings.ssh);
  if (!shared) jumps.set(settings.ssh, (shared = new JumpHosts()));
  return connect(
    { ...settings.ssh, host: host.host, port: host.port, user: host.user },
    { log: (l) => reporter.info(l), warn: (l) => reporter.warning(l) },
    shared,
  );
};
