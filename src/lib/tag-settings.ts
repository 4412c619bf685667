import { InputError } from './errors.ts';
import { type InputReader, readInputs } from './input-values.ts';
import { parsePairs } from './inputs.ts';
import { parseFlavor, parseMetadata, parseTagRules } from './tag-rules.ts';
import { DEFAULT_CHANNELS, type TagPolicy, validatePolicy } from './tags.ts';

export type { InputReader } from './input-values.ts';

/**
 * The tag-policy inputs (actions/tags, actions/build, the umbrella, `lading tags|build`) → one validated TagPolicy,
 * or an InputError naming the input. Defaults and bounds come from the table of inputs. `images` (the names to
 * produce references for) is a tags input only: the build's `images` is its build list.
 */
export function tagPolicyFromInputs(read: InputReader, opts: { images?: boolean } = {}): TagPolicy {
  const v = readInputs(read, [
    'sha-length',
    'channels',
    'timestamp',
    'semver',
    'semver-latest',
    'pr',
    'full-sha',
    'prefix',
    'suffix',
    'tag-rules',
    'flavor',
    'metadata',
  ]);
  let channels = DEFAULT_CHANNELS;
  if (v.channels.length === 1 && v.channels[0] === 'none') channels = [];
  else if (v.channels.length > 0) {
    channels = parsePairs('channels', v.channels.join('\n')).map(([pattern, channel]) => {
      if (channel === '') throw new InputError('channels', `'${pattern}' maps to an empty channel`);
      return { pattern, channel };
    });
  }
  const policy: TagPolicy = {
    images: opts.images === false ? [] : readInputs(read, ['tag-images'])['tag-images'],
    shaLength: v['sha-length'],
    channels,
    timestamp: v.timestamp,
    semver: v.semver,
    semverLatest: v['semver-latest'],
    pr: v.pr,
    fullSha: v['full-sha'],
    prefix: v.prefix ?? '',
    suffix: v.suffix ?? '',
  };
  const lines = (text: string | undefined) => (text ?? '').split(/\r?\n/);
  const rules = parseTagRules(lines(v['tag-rules']));
  if (rules.length > 0) policy.rules = rules;
  if (v.flavor?.trim()) policy.flavor = parseFlavor(lines(v.flavor));
  if (v.metadata?.trim()) policy.metadata = parseMetadata(v.metadata);
  validatePolicy(policy);
  return policy;
}
