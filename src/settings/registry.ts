import type { AuthSettings } from '../io/registry-auth.ts';
import { InputError } from '../lib/errors.ts';
import { type InputReader, readInputs } from '../lib/input-values.ts';
import { parseRegistryAuth } from './common.ts';

/** The registry credentials of extract and deploy: parseRegistryAuth, and the registry host they are for. */
export function readRegistryAuth(read: InputReader): Omit<AuthSettings, 'mask' | 'log'> {
  const auth = parseRegistryAuth(read);
  const { registry } = readInputs(read, ['registry']);
  if (registry) {
    if (/[/\s@]/.test(registry))
      throw new InputError('registry', `'${registry}' is not a registry host`, 'give host[:port], like ghcr.io');
    auth.registry = registry;
  }
  return auth;
}
