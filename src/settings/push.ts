import { type InputReader, readInputs } from '../lib/input-values.ts';
import type { PushSettings } from '../stages/push.ts';
import { parseRegistryLogin } from './common.ts';

/** actions/push, the umbrella and `lading push`: registry logins, ECR repository creation, retries. */
export function parsePushSettings(read: InputReader): PushSettings {
  const registry = parseRegistryLogin(read);
  const v = readInputs(read, ['ecr-create-repository', 'retries']);
  return {
    overrides: registry.overrides,
    insecure: registry.insecure,
    auth: { ...registry.auth, ecrCreateRepositories: v['ecr-create-repository'] },
    tries: v.retries,
  };
}
