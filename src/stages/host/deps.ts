import type { Connector } from '../../io/host-session.ts';
import { ImageShipper } from './images.ts';
import { registryLogins } from './logins.ts';
import type { HostDeps } from './types.ts';

/**
 * The real adapters of the host-facing stages around a connector (SSH, or this machine): the clock, registry logins
 * minted on the runner, the store-backed image shipper, timers. Built at the edge (action main, CLI, agent); unit
 * tests pass fakes instead (`over`).
 */
export function hostDeps(connector: Connector, over: Partial<HostDeps> = {}): HostDeps {
  return {
    connector,
    now: () => new Date(),
    logins: registryLogins,
    shipper: (store, reporter, fetch) => new ImageShipper(store, reporter, fetch),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    ...over,
  };
}
