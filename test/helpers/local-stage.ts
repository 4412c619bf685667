import { LocalSession } from '../../src/io/local-host.ts';
import { stderrReporter } from '../../src/io/reporter.ts';
import type { Manifest } from '../../src/lib/manifest.ts';
import { readHostSettings } from '../../src/settings/host.ts';
import { runDeployStage } from '../../src/stages/deploy.ts';
import { hostDeps } from '../../src/stages/host/deps.ts';
import type { DeployResult, HostStageOptions } from '../../src/stages/host/types.ts';
import { testEnv } from './testenv.ts';

/**
 * Host stages on this machine's test dockerd through a local session (no SSH): `base()` gives the test's inputs (its
 * root, timeouts) on top of hosts=localhost, `extra` those of one call; the clock moves a minute per call, so each
 * release id is new.
 */
export function localHostStage(base: () => Record<string, string>, start: number) {
  let clock = start;
  const opts = async (extra: Record<string, string> = {}): Promise<HostStageOptions> => {
    const inputs: Record<string, string> = {
      hosts: 'localhost',
      'ssh-key': 'unused-by-the-local-session',
      'known-hosts': 'unused',
      ...base(),
      ...extra,
    };
    return {
      settings: await readHostSettings((n) => inputs[n] || undefined, {}),
      reporter: stderrReporter(true),
      deps: hostDeps(async () => new LocalSession({ ...process.env, DOCKER_HOST: testEnv().dockerHost }), {
        now: () => new Date((clock += 60_000)),
      }),
    };
  };
  const deploy = async (m: Manifest, extra: Record<string, string> = {}): Promise<DeployResult> =>
    runDeployStage({ ...(await opts(extra)), manifest: m });
  return { opts, deploy };
}
