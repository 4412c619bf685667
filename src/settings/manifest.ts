import { readFileSync } from 'node:fs';
import { InputError } from '../lib/errors.ts';
import { webhookSecret } from '../lib/webhook.ts';
import { parseEnvNames } from '../lib/inputs.ts';
import { type InputReader, readInputs } from '../lib/input-values.ts';
import { isLoopbackHost, parseStoreLocation } from '../lib/store-location.ts';
import type { ManifestInputs, NotifySettings } from '../stages/manifest.ts';
import type { PushResult } from '../stages/push.ts';
import { parseStoreOptions } from './common.ts';
import { readComposePolicy } from './deploy.ts';

/** actions/manifest, the umbrella and `lading manifest`: what to write, where to publish it, whom to notify. */
export function parseManifestInputs(read: InputReader): ManifestInputs {
  const v = readInputs(read, [
    'compose-files',
    'compose-project',
    'compose-env',
    'compose-env-file',
    'compose-resolver',
    'bundle-size-limit',
    'pin-external',
    'manifest-path',
    'manifest-secret',
    'manifest-store',
  ]);
  // NAME, or NAME=VALUE (the value only reads the project here; the deploy supplies it): names into the manifest
  const composeEnv = parseEnvNames('compose-env', v['compose-env']);
  const out: ManifestInputs = {
    composeEnv,
    composeEnvFiles: v['compose-env-file'],
    composeResolver: v['compose-resolver'],
    bundleSizeLimit: v['bundle-size-limit'] * 1048576,
    pinExternal: v['pin-external'],
    storeOptions: parseStoreOptions(read),
    composePolicy: readComposePolicy(read),
  };
  if (v['manifest-secret']) out.secret = v['manifest-secret'];
  if (v['compose-files'].length > 0) out.composeFiles = v['compose-files'];
  if (v['compose-project']) out.project = v['compose-project'];
  if (v['manifest-path']) out.path = v['manifest-path'];
  if (v['manifest-store']) out.publishTo = parseStoreLocation('manifest-store', v['manifest-store']);
  const notify = parseNotify(read);
  if (notify) out.notify = notify;
  return out;
}

function parseNotify(read: InputReader): NotifySettings | undefined {
  const v = readInputs(read, ['notify-url', 'notify-secret', 'notify-format']);
  if (v['notify-url'].length === 0) return undefined;
  const urls = v['notify-url'].map((u) => {
    let url: URL;
    try {
      url = new URL(u);
    } catch {
      throw new InputError(
        'notify-url',
        `'${u}' is not a URL`,
        'write the agent webhook URL, https://host:8443/hooks/lading',
      );
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
      throw new InputError(
        'notify-url',
        `'${u}' is not https`,
        'agents listen with TLS; plain http is for loopback only',
      );
    }
    return url;
  });
  const secret = webhookSecret(
    'notify-secret',
    v['notify-secret'],
    "pass the agent's webhook secret (a repository secret)",
  );
  const c = readInputs(read, ['notify-ca', 'notify-ca-file']);
  const caText = c['notify-ca']?.trim();
  const caFile = c['notify-ca-file'];
  if (caText && caFile) throw new InputError('notify-ca', 'and notify-ca-file are both set', 'give one');
  let ca = caText;
  if (caFile) {
    try {
      ca = readFileSync(caFile, 'utf8');
    } catch (err) {
      throw new InputError('notify-ca-file', `${caFile} cannot be read (${(err as NodeJS.ErrnoException).code})`);
    }
  }
  if (ca !== undefined && !/-----BEGIN CERTIFICATE-----/.test(ca)) {
    throw new InputError(
      caFile ? 'notify-ca-file' : 'notify-ca',
      'holds no PEM certificate (-----BEGIN CERTIFICATE-----)',
      "give the agent's certificate (cert.pem) or the CA that signed it",
    );
  }
  return { urls, secret, format: v['notify-format'], ...(ca ? { ca } : {}) };
}

/** The push (or export) step's json output (`push-json`), checked enough to fail clearly on anything else. */
export function parsePushJson(read: InputReader): PushResult {
  const raw = readInputs(read, ['push-json'])['push-json'];
  if (!raw) throw new InputError('push-json', 'is empty', 'pass the json output of the push (or export) step');
  try {
    const pushed = JSON.parse(raw) as PushResult;
    if (!Array.isArray(pushed.images) || !pushed.context?.sha || pushed.images.some((i) => !i.digest))
      throw new Error('missing fields');
    return pushed;
  } catch (err) {
    throw new InputError('push-json', `is not the json output of the push step (${(err as Error).message})`);
  }
}
