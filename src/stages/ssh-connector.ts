import { connect } from '../io/ssh.ts';
import type { Connector } from './deploy.ts';

/** Hosts reached over SSH with pinned host keys (src/io/ssh.ts). */
export const sshConnector: Connector = async (host, settings, reporter) =>
  connect(
    { ...settings.ssh, host: host.host, port: host.port, user: host.user },
    { log: (l) => reporter.info(l), warn: (l) => reporter.warning(l) },
  );
