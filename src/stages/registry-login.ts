import { existingCredential } from '../io/docker-config.ts';
import { type AuthSettings, credentialFor, type RegistryCredential } from '../io/registry-auth.ts';
import type { Env } from '../lib/context.ts';
import { detectProvider, type RegistryProvider } from '../lib/registry.ts';
import type { Reporter } from '../io/reporter.ts';

export interface RegistrySettings {
  auth: Omit<AuthSettings, 'mask' | 'log'>;
  overrides: Record<string, RegistryProvider>;
}

/**
 * The credential to log in to each host with: what the inputs give (static, Google, ECR, ghcr.io with GITHUB_TOKEN),
 * else the login the runner's own docker config already has (login-action, credential helpers), else none.
 */
export async function registryCredentials(
  hosts: string[],
  settings: RegistrySettings,
  env: Env,
  reporter: Reporter,
  extra: Partial<AuthSettings> = {},
): Promise<Map<string, RegistryCredential>> {
  const auth: AuthSettings = {
    ...settings.auth,
    ...extra,
    mask: (s) => reporter.secret(s),
    log: (l) => reporter.info(l),
  };
  if (!auth.githubToken && env.GITHUB_TOKEN) auth.githubToken = env.GITHUB_TOKEN;
  if (!auth.githubActor && env.GITHUB_ACTOR) auth.githubActor = env.GITHUB_ACTOR;
  const creds = new Map<string, RegistryCredential>();
  for (const host of hosts) {
    const provider = detectProvider(host, settings.overrides);
    const cred =
      (await credentialFor(host, provider, auth)) ??
      (await existingCredential(host, provider, { env, log: auth.log, mask: auth.mask }));
    if (cred) creds.set(host, cred);
    reporter.info(`${host}: ${provider} registry, ${cred ? `logging in as ${cred.username}` : 'anonymous'}`);
  }
  return creds;
}
