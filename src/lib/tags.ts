import type { BuildContext } from './context.ts';
import { InputError } from './errors.ts';
import { isValidTag, MAX_TAG, parseImageName, sanitizeRefPart } from './image-ref.ts';
import { compareSemver, parseSemver, type SemVer } from './semver.ts';
import { DEFAULT_FLAVOR, evaluateRules, type Flavor, type ImportedMetadata, type TagRule } from './tag-rules.ts';

/**
 * The tag policy: which tags an image built from a BuildContext gets. Rules are data (TagPolicy); the result
 * (TagPlan) is a plain value the build, push, export and manifest stages consume.
 */
export interface ChannelRule {
  /** Branch glob: `*` matches within one path segment, `**` across segments, `?` one character. */
  pattern: string;
  channel: string;
}

export type TimestampSource = 'off' | 'commit' | 'build';
export type SemverLatest = 'highest' | 'always' | 'never';

export interface TagPolicy {
  /** Length of the short sha in `<branch>-<shorthash>`. */
  shaLength: number;
  /** Branch → channel tag; first matching rule wins. */
  channels: ChannelRule[];
  /** Add a sortable UTC timestamp tag (20180923T082316Z) from the commit time or the build time. */
  timestamp: TimestampSource;
  /** On a tag that is a semver version: 1.2.3, 1.2, 1. */
  semver: boolean;
  /** When a semver tag also gets `latest`: only for the highest release known, always, or never. */
  semverLatest: SemverLatest;
  /** `pr-<n>` on pull request events. */
  pr: boolean;
  /** The full 40-hex sha as a tag. */
  fullSha: boolean;
  prefix: string;
  suffix: string;
  /** Image names to produce full references for (optional). */
  images: string[];
  /** docker/metadata-action style rules (type=raw|match|schedule), added after lading's own tags. */
  rules?: TagRule[];
  /** docker/metadata-action's flavor: latest=auto|true|false and the prefix/suffix of rule tags. */
  flavor?: Flavor;
  /** docker/metadata-action's output: when given, these tags and labels replace the computed ones. */
  metadata?: ImportedMetadata;
}

export const DEFAULT_CHANNELS: ChannelRule[] = [
  { pattern: 'main', channel: 'latest' },
  { pattern: 'master', channel: 'latest' },
  { pattern: 'stage', channel: 'stage' },
];

export const DEFAULT_POLICY: TagPolicy = {
  shaLength: 7,
  channels: DEFAULT_CHANNELS,
  timestamp: 'off',
  semver: true,
  semverLatest: 'highest',
  pr: true,
  fullSha: false,
  prefix: '',
  suffix: '',
  images: [],
};

export interface TagPlan {
  /** Every tag, primary first, without duplicates. */
  tags: string[];
  /** `<branch>-<shorthash>`: unique per commit, what DOCKER_TAG is set to. */
  primary: string;
  /** The channel tag (latest, stage, …) when the branch maps to one. */
  channel?: string;
  /** The semver version on a version tag, else the primary tag. */
  version: string;
  shortSha: string;
  /** Full references per image, in the order of policy.images. */
  images: Array<{ name: string; refs: string[] }>;
  /** OCI labels for the image config. */
  labels: Record<string, string>;
  /** Things the user should know about (fallbacks taken). */
  warnings: string[];
}

export interface TagInputs {
  /** Build time (for timestamp: build and the created label). */
  now: Date;
  /** Every git tag in the repository, for semver-latest: highest and floating major/minor tags. */
  knownTags?: string[];
}

/** A branch glob as an anchored regular expression. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

export function channelFor(branch: string, rules: ChannelRule[]): string | undefined {
  return rules.find((r) => globToRegExp(r.pattern).test(branch))?.channel;
}

/** 2018-09-23T08:23:16.123Z → 20180923T082316Z (sorts as text in time order). */
export function timestampTag(date: Date): string {
  return date
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
}

/** Checks a policy before anything is computed; errors name the input to fix. */
export function validatePolicy(policy: TagPolicy): void {
  if (!Number.isInteger(policy.shaLength) || policy.shaLength < 4 || policy.shaLength > 40) {
    throw new InputError('sha-length', `${policy.shaLength} is out of range`, 'use a number from 4 to 40');
  }
  if (policy.prefix && !/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(policy.prefix)) {
    throw new InputError(
      'prefix',
      `'${policy.prefix}' cannot start a Docker tag`,
      'use letters, digits, _ . - (not starting with . or -)',
    );
  }
  if (policy.suffix && !/^[A-Za-z0-9_.-]+$/.test(policy.suffix)) {
    throw new InputError('suffix', `'${policy.suffix}' is not allowed in a Docker tag`, 'use letters, digits, _ . -');
  }
  for (const rule of policy.channels) {
    if (!isValidTag(rule.channel)) {
      throw new InputError('channels', `channel '${rule.channel}' (for '${rule.pattern}') is not a valid Docker tag`);
    }
  }
  const room = MAX_TAG - policy.prefix.length - policy.suffix.length - 1 - policy.shaLength;
  if (room < 1) {
    throw new InputError('prefix', 'prefix and suffix leave no room for the branch and short sha in 128 characters');
  }
}

function withAffixes(policy: TagPolicy, tag: string, input: string): string {
  const full = `${policy.prefix}${tag}${policy.suffix}`;
  if (!isValidTag(full)) {
    throw new InputError(
      input,
      `the tag '${full}' is not a valid Docker tag`,
      'tags are [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}',
    );
  }
  return full;
}

/** `<ref>-<shorthash>` with the ref part sanitized and cut so the whole tag fits in 128 characters. */
export function refTag(policy: TagPolicy, refName: string, shortSha: string): string {
  const room = MAX_TAG - policy.prefix.length - policy.suffix.length - 1 - shortSha.length;
  let part = sanitizeRefPart(refName)
    .slice(0, room)
    .replace(/[.-]+$/, '');
  if (part === '') part = 'branch';
  return withAffixes(policy, `${part}-${shortSha}`, 'branch');
}

function semverTags(version: SemVer, policy: TagPolicy, known: SemVer[]): { tags: string[]; latest: boolean } {
  const tags = [version.version];
  if (version.prerelease) return { tags, latest: false }; // prereleases never move floating tags
  const releases = [...known.filter((v) => !v.prerelease), version];
  const isHighestWhere = (same: (v: SemVer) => boolean) =>
    releases.filter(same).every((v) => compareSemver(v, version) <= 0);
  if (isHighestWhere((v) => v.major === version.major && v.minor === version.minor)) {
    tags.push(`${version.major}.${version.minor}`);
  }
  // A floating major tag for 0.x would claim API stability that 0.x does not promise.
  if (version.major > 0 && isHighestWhere((v) => v.major === version.major)) tags.push(`${version.major}`);
  const latest = policy.semverLatest === 'always' || (policy.semverLatest === 'highest' && isHighestWhere(() => true));
  return { tags, latest };
}

export function computeTags(ctx: BuildContext, policy: TagPolicy, inputs: TagInputs): TagPlan {
  validatePolicy(policy);
  const warnings: string[] = [];
  const shortSha = ctx.sha.slice(0, policy.shaLength);
  const isPr = ctx.pr !== undefined;
  let refName = ctx.branch ?? ctx.tag;
  if (!refName) {
    refName = 'detached';
    warnings.push('no branch or tag is known for this commit (detached HEAD?): the primary tag uses "detached"');
  }
  const primary = refTag(policy, refName, shortSha);
  const tags = [primary];

  // Channels move only on branch builds: a pull request from a fork's `main` must never become `latest`.
  const channel = !isPr && ctx.branch ? channelFor(ctx.branch, policy.channels) : undefined;
  const channelTag = channel ? withAffixes(policy, channel, 'channels') : undefined;
  if (channelTag) tags.push(channelTag);

  let version = primary;
  const semver = policy.semver && ctx.tag && !isPr ? parseSemver(ctx.tag) : undefined;
  if (semver) {
    const known = (inputs.knownTags ?? []).map(parseSemver).filter((v): v is SemVer => v !== undefined);
    const st = semverTags(semver, policy, known);
    for (const t of st.tags) tags.push(withAffixes(policy, t, 'semver'));
    if (st.latest) tags.push(withAffixes(policy, 'latest', 'semver-latest'));
    version = semver.version;
  }
  if (isPr && policy.pr) tags.push(withAffixes(policy, `pr-${ctx.pr}`, 'pr'));
  if (policy.timestamp !== 'off') {
    let when = inputs.now;
    if (policy.timestamp === 'commit') {
      if (ctx.commitTime) when = new Date(ctx.commitTime);
      else warnings.push('the commit time is unknown (shallow checkout?): the timestamp tag uses the build time');
    }
    tags.push(withAffixes(policy, timestampTag(when), 'timestamp'));
  }
  if (policy.fullSha) tags.push(withAffixes(policy, ctx.sha, 'full-sha'));

  const flavor = policy.flavor ?? DEFAULT_FLAVOR;
  if (policy.rules?.length || flavor.latest !== 'auto') {
    const ruled = evaluateRules(policy.rules ?? [], flavor, { ctx, now: inputs.now });
    warnings.push(...ruled.warnings);
    tags.push(...ruled.tags);
    // latest=false (metadata-action's flavor) means no `latest` at all, also not from a channel or a release.
    if (flavor.latest === 'false') {
      const ours = `${policy.prefix}latest${policy.suffix}`;
      for (let i = tags.length - 1; i > 0; i--) if (tags[i] === ours) tags.splice(i, 1);
    }
    if (ruled.latest) tags.push(ruled.latestTag);
  }

  let unique = [...new Set(tags)];
  let labelsFrom: Record<string, string> = {};
  let primaryTag = primary;
  let imageNames = policy.images;
  if (policy.metadata) {
    // metadata-action decided the tags: keep its order (its first tag is the version it computed).
    unique = policy.metadata.tags;
    primaryTag = unique[0]!;
    labelsFrom = policy.metadata.labels;
    version = policy.metadata.labels['org.opencontainers.image.version'] || primaryTag;
    if (imageNames.length === 0) imageNames = policy.metadata.images;
  }
  const images = imageNames.map((raw, i) => {
    const { name } = parseImageName(raw, `images (entry ${i + 1})`);
    return { name, refs: unique.map((t) => `${name}:${t}`) };
  });
  const dupe = images.find((img, i) => images.findIndex((o) => o.name === img.name) !== i);
  if (dupe) throw new InputError('images', `'${dupe.name}' is listed twice`);

  const labels: Record<string, string> = {
    'org.opencontainers.image.revision': ctx.sha,
    'org.opencontainers.image.created': inputs.now.toISOString(),
    'org.opencontainers.image.version': version,
  };
  if (ctx.repositoryUrl) labels['org.opencontainers.image.source'] = ctx.repositoryUrl;
  Object.assign(labels, labelsFrom);

  const plan: TagPlan = { tags: unique, primary: primaryTag, version, shortSha, images, labels, warnings };
  // The channel only when its tag survived (flavor latest=false, or metadata-action's own tags, can drop it).
  if (channel && channelTag && unique.includes(channelTag)) plan.channel = channel;
  return plan;
}
