import { createHmac, timingSafeEqual } from 'node:crypto';
import { LadingError } from './errors.ts';

/**
 * Detached manifest signatures: HMAC-SHA256 over the manifest's exact bytes with a secret shared by the build (which
 * signs) and the deploy side (which verifies), as lowercase hex in `<manifest>.sig` beside the manifest. It protects
 * against whoever can write the manifest's location (a bucket, a web server, the path in transit) but not the secret:
 * they cannot make a manifest a deploy accepts. It does not protect against someone who has the secret (the build's
 * repository secrets), and it does not stop a replay of an older signed manifest (the deploy's downgrade check does).
 */
export const SIGNATURE_SUFFIX = '.sig';

export function signManifest(text: string, secret: string): string {
  return createHmac('sha256', secret).update(text, 'utf8').digest('hex');
}

export function verifyManifestSignature(
  text: string,
  signature: string | undefined,
  secret: string,
  source: string,
): void {
  const want = Buffer.from(signManifest(text, secret), 'hex');
  const sig = (signature ?? '').trim().toLowerCase();
  const got = /^[a-f0-9]{64}$/.test(sig) ? Buffer.from(sig, 'hex') : undefined;
  if (!got) {
    throw new LadingError(
      `${source} has no valid signature (${source}${SIGNATURE_SUFFIX} is ${signature === undefined ? 'missing' : 'not an HMAC-SHA256 hex digest'})`,
      'a manifest-secret is configured, so only manifests signed with it are deployed: sign it in the manifest step (manifest-secret)',
    );
  }
  if (!timingSafeEqual(want, got)) {
    throw new LadingError(
      `${source} does not match its signature: it was changed after signing, or signed with another secret`,
      'deploy a manifest written by the manifest step with the same manifest-secret; nothing was deployed',
    );
  }
}
