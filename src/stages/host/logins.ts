import type { Reporter } from '../../io/reporter.ts';
import { credentialFor } from '../../io/registry-auth.ts';
import type { Manifest } from '../../lib/manifest.ts';
import { detectProvider, registryHostOf } from '../../lib/registry.ts';
import type { DeploySettings } from './types.ts';

/** Short-lived registry logins for the hosts, minted on the runner. */
export async function registryLogins(
  manifest: Manifest,
  settings: Pick<DeploySettings, 'auth' | 'overrides'>,
  reporter: Reporter,
): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  const registries = [
    ...new Set(manifest.images.flatMap((i) => (i.transport.kind === 'registry' ? [registryHostOf(i.name)] : []))),
  ];
  let n = 0;
  for (const host of registries) {
    const provider = settings.overrides[host.toLowerCase()] ?? detectProvider(host, settings.overrides);
    const cred = await credentialFor(host, provider, {
      ...settings.auth,
      hostsFromManifest: true,
      mask: reporter.secret,
      log: reporter.info,
    });
    if (!cred) continue;
    n++;
    env[`LADING_LOGIN_${n}_HOST`] = cred.host;
    env[`LADING_LOGIN_${n}_USER`] = cred.username;
    env[`LADING_LOGIN_${n}_PASS`] = cred.password;
  }
  env.LADING_LOGIN_COUNT = String(n);
  return env;
}
