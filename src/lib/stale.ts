/**
 * Scheduled rebuilds (`lading stale`): which images of a chain (base → dev → prod) must be rebuilt, and why.
 * An image is stale when
 *   - the registry has no sortable timestamp tag for it yet (never built on a schedule),
 *   - the last commit touching its build context is newer than its newest timestamp tag (the seed's rule),
 *   - a base image it is built FROM (outside the chain) now has another digest than the one recorded in the
 *     newest image's `org.opencontainers.image.base.digest` label, or
 *   - an image it is built on in the chain is being rebuilt.
 * Images without a recorded base digest are judged on the other rules (with a note saying so).
 */

/** OCI annotation keys (used as image labels) that record the base image a build used. */
export const BASE_NAME_LABEL = 'org.opencontainers.image.base.name';
export const BASE_DIGEST_LABEL = 'org.opencontainers.image.base.digest';

/** 20180923T082316Z: a UTC timestamp tag that sorts as text in time order (see timestampTag in tags.ts). */
export const TIMESTAMP_TAG_RE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** The time a timestamp tag stands for, or undefined when it is not one (or not a real date). */
export function parseTimestampTag(tag: string): Date | undefined {
  const m = TIMESTAMP_TAG_RE.exec(tag);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  if (date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) return undefined;
  return date;
}

/** The newest timestamp tag among `tags` ("launch the newest"), or undefined when there is none. */
export function newestTimestampTag(tags: readonly string[]): string | undefined {
  let best: string | undefined;
  for (const t of tags) if (parseTimestampTag(t) && (best === undefined || t > best)) best = t;
  return best;
}

/** The labels a build records for its base images (one base: name + digest), for the build to pass as --label. */
export function baseImageLabels(bases: Array<{ name: string; digest: string }>): Record<string, string> {
  if (bases.length === 0) return {};
  return {
    [BASE_NAME_LABEL]: bases.map((b) => b.name).join(','),
    [BASE_DIGEST_LABEL]: bases.map((b) => b.digest).join(','),
  };
}

/** The base digests recorded in labels: base name → digest. */
export function recordedBases(labels: Record<string, string> | undefined): Record<string, string> {
  const names = (labels?.[BASE_NAME_LABEL] ?? '').split(',').filter(Boolean);
  const digests = (labels?.[BASE_DIGEST_LABEL] ?? '').split(',').filter(Boolean);
  const out: Record<string, string> = {};
  names.forEach((n, i) => {
    if (digests[i]) out[n] = digests[i]!;
  });
  return out;
}

export interface StaleImageInput {
  id: string;
  name: string;
  /** Ids of chain images this one is built on. Inputs come in chain order (upstream first). */
  dependsOn: string[];
  /** Time of the last commit that touches the image's build context. */
  commitTime?: Date;
  /** Every tag the registry has for the image. */
  tags: string[];
  /** External base images (FROM lines outside the chain): the digest now in the registry and the recorded one. */
  bases: Array<{ name: string; current?: string; recorded?: string }>;
}

export interface StaleDecision {
  id: string;
  name: string;
  stale: boolean;
  /** Why it must be rebuilt (empty when it need not be). */
  reasons: string[];
  /** Things worth knowing that did not decide anything. */
  notes: string[];
  newestTag?: string;
}

/** Decides, in chain order, which images must be rebuilt. Pure: every fact is in the inputs. */
export function decideStale(images: StaleImageInput[]): StaleDecision[] {
  const decided = new Map<string, StaleDecision>();
  const out: StaleDecision[] = [];
  for (const img of images) {
    const d: StaleDecision = { id: img.id, name: img.name, stale: false, reasons: [], notes: [] };
    const newest = newestTimestampTag(img.tags);
    if (newest) d.newestTag = newest;
    if (!newest) {
      d.reasons.push('the registry has no timestamp tag for it yet');
    } else if (!img.commitTime) {
      d.notes.push('no commit time known for its context: the code rule was not applied');
    } else {
      const built = parseTimestampTag(newest)!;
      // Timestamp tags have second resolution: a commit within the tag's second is covered by it.
      if (Math.floor(img.commitTime.getTime() / 1000) > built.getTime() / 1000) {
        d.reasons.push(
          `the code changed at ${img.commitTime.toISOString().replace(/\.000Z$/, 'Z')}, after the newest tag ${newest}`,
        );
      }
    }
    for (const b of img.bases) {
      if (!b.recorded) {
        d.notes.push(`no recorded digest for base ${b.name} (label ${BASE_DIGEST_LABEL}): base changes not checked`);
      } else if (!b.current) {
        d.notes.push(`base ${b.name} could not be resolved in its registry: base changes not checked`);
      } else if (b.current !== b.recorded) {
        d.reasons.push(`base ${b.name} changed: built on ${short(b.recorded)}, now ${short(b.current)}`);
      }
    }
    for (const up of img.dependsOn) {
      const u = decided.get(up);
      if (!u) d.notes.push(`upstream '${up}' is not among the images checked`);
      else if (u.stale) d.reasons.push(`upstream image '${up}' is being rebuilt`);
    }
    d.stale = d.reasons.length > 0;
    decided.set(img.id, d);
    out.push(d);
  }
  return out;
}

const short = (digest: string) => digest.replace(/^(sha256:[0-9a-f]{12})[0-9a-f]+$/, '$1');
