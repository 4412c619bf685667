import type { StoreOptions } from '../../io/store.ts';
import type { ManifestReadOptions } from '../../io/manifest-source.ts';
import type { AuthSettings } from '../../io/registry-auth.ts';
import type { Platform } from '../../lib/extract-plan.ts';
import type { parseProviderOverrides } from '../../lib/registry.ts';

/** The extract stage's inputs, parsed once at the edge (src/settings/extract.ts): what to read, which paths, where. */
export interface ExtractSettings {
  requests: string[];
  destination: string;
  cacheDir: string;
  platform: Platform;
  platformGiven: boolean;
  image?: string;
  source?: string;
  manifest?: string;
  sha256?: string;
  overrides: ReturnType<typeof parseProviderOverrides>;
  insecure: string[];
  auth: Omit<AuthSettings, 'mask' | 'log'>;
  store: StoreOptions;
  manifestLimits: Pick<ManifestReadOptions, 'maxBytes' | 'secret'>;
  /** source-max-size / source-idle-timeout: the bounds of an https source download. */
  sourceLimits: { maxBytes: number; idleMs: number };
}
