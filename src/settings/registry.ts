import type { AuthSettings } from '../io/registry-auth.ts';
import { InputError } from '../lib/errors.ts';
import type { InputReader } from '../lib/tag-settings.ts';

/** The registry credential inputs shared by push and deploy: username/password (both or neither), Google, AWS. */
export function readRegistryAuth(read: InputReader): Omit<AuthSettings, 'mask' | 'log'> {
  const username = read('username');
  const password = read('password');
  if (!!username !== !!password) {
    throw new InputError(
      username ? 'password' : 'username',
      'is empty while the other one is set',
      'give both, or neither',
    );
  }
  const auth: Omit<AuthSettings, 'mask' | 'log'> = {};
  if (username) auth.username = username;
  if (password) auth.password = password;
  const registry = read('registry')?.trim();
  if (registry) {
    if (/[/\s@]/.test(registry))
      throw new InputError('registry', `'${registry}' is not a registry host`, 'give host[:port], like ghcr.io');
    auth.registry = registry;
  }
  const google = read('google-credentials');
  if (google) auth.googleCredentials = google;
  const region = read('aws-region');
  if (region) auth.awsRegion = region;
  return auth;
}
