import { openStore, type ObjectInfo, type StoreOptions } from '../io/store.ts';
import { formatBytes } from '../io/archive.ts';
import { parseLayerIndex } from '../lib/layer-index.ts';
import { type Manifest, parseManifest } from '../lib/manifest.ts';
import { type StoreLocation, storeKeys } from '../lib/store-location.ts';
import type { Reporter } from '../io/reporter.ts';

/** Content objects lading names by hash (archives, layer blobs, configs, indexes, their sidecars): prunable. */
const CONTENT =
  /(?:^|\/)(?:images\/.+\/sha256-[a-f0-9]{64}(?:\.tar(?:\.zst|\.gz)?|\.index\.json)|blobs\/sha256\/[a-f0-9]{64}(?:\.zst|\.gz)?)(?:\.json)?$/;

export function isContentKey(key: string): boolean {
  return CONTENT.test(key);
}

/** The keys a manifest needs (its archives or indexes, their sidecars); layer blobs are added from the indexes. */
export function referencedKeys(m: Manifest): string[] {
  const keys: string[] = [];
  for (const i of m.images) {
    const t = i.transport;
    if (t.kind === 's3' || t.kind === 'gcs') {
      const k = t.kind === 's3' ? t.key : t.object;
      keys.push(k, storeKeys.sidecar(k));
    }
  }
  return keys;
}

export interface RetentionResult {
  manifests: number;
  kept: number;
  unreferenced: Array<{ key: string; size: number }>;
  deleted: boolean;
  bytes: number;
}

/**
 * Lists the content objects under a store prefix that none of the newest `keep` manifests (published under
 * manifests/by-sha/) reference, and deletes them when `apply` is set. Aliases (`-latest` …) and manifests themselves
 * are never touched. Dry run by default.
 */
/** `lading retention`'s typed settings, parsed at the edge (src/settings/store.ts). */
export interface RetentionSettings {
  location: StoreLocation;
  storeOptions: StoreOptions;
  /** Manifests to keep, newest first. */
  keep: number;
  /** Delete (else a dry run). */
  apply: boolean;
}

export async function runRetentionStage(opts: {
  settings: RetentionSettings;
  reporter: Reporter;
}): Promise<RetentionResult> {
  const { reporter } = opts;
  const { location: loc, keep, apply } = opts.settings;
  const store = await openStore(loc, opts.settings.storeOptions);
  const manifests: Array<{ created: string; m: Manifest }> = [];
  for await (const o of store.list(`${loc.prefix}manifests/by-sha/`)) {
    const m = parseManifest((await store.getText(o.key)).text, store.url(o.key));
    manifests.push({ created: m.source.created, m });
  }
  manifests.sort((a, b) => b.created.localeCompare(a.created));
  const kept = manifests.slice(0, keep);
  const needed = new Set<string>();
  for (const { m } of kept) {
    for (const k of referencedKeys(m)) needed.add(k);
    for (const i of m.images) {
      const t = i.transport;
      if ((t.kind === 's3' || t.kind === 'gcs') && t.mode === 'layers') {
        const index = parseLayerIndex((await store.getText(t.kind === 's3' ? t.key : t.object)).text);
        for (const b of [index.config, ...index.layers]) needed.add(b.key).add(storeKeys.sidecar(b.key));
      }
    }
  }
  const unreferenced: ObjectInfo[] = [];
  for (const prefix of [`${loc.prefix}images/`, `${loc.prefix}blobs/`]) {
    for await (const o of store.list(prefix)) {
      if (isContentKey(o.key) && !needed.has(o.key)) unreferenced.push(o);
    }
  }
  if (manifests.length === 0 && unreferenced.length > 0) {
    reporter.warning(
      `no manifest under ${store.url(`${loc.prefix}manifests/by-sha/`)}: nothing is provably in use, so nothing is pruned`,
    );
    return { manifests: 0, kept: 0, unreferenced: [], deleted: false, bytes: 0 };
  }
  const bytes = unreferenced.reduce((a, o) => a + o.size, 0);
  for (const o of unreferenced)
    reporter.info(`${apply ? 'deleting' : 'would delete'} ${store.url(o.key)} (${formatBytes(o.size)})`);
  // Sidecars (<key>.json, the longer name of each pair) go before their objects: an export takes a sidecar as proof
  // that its object exists, so one must never outlive the other.
  if (apply) for (const o of [...unreferenced].sort((a, b) => b.key.length - a.key.length)) await store.delete(o.key);
  reporter.info(
    `${manifests.length} manifest(s), the newest ${kept.length} kept; ${unreferenced.length} unreferenced object(s), ${formatBytes(bytes)}${apply ? ' deleted' : ' (dry run: pass apply to delete)'}`,
  );
  return {
    manifests: manifests.length,
    kept: kept.length,
    unreferenced: unreferenced.map((o) => ({ key: o.key, size: o.size })),
    deleted: apply,
    bytes,
  };
}
