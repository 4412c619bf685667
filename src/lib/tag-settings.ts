import { InputError } from './errors.ts';
import { parseBool, parseChoice, parseInteger, parseList, parsePairs } from './inputs.ts';
import { DEFAULT_CHANNELS, DEFAULT_POLICY, type TagPolicy, validatePolicy } from './tags.ts';

/** Reads one raw input by its documented name (action input or CLI flag); undefined or '' when not given. */
export type InputReader = (name: string) => string | undefined;

/** The tag-policy inputs, shared by actions/tags, the umbrella action and `lading tags`. */
export const TAG_INPUTS = [
  'images',
  'sha-length',
  'channels',
  'timestamp',
  'semver',
  'semver-latest',
  'pr',
  'full-sha',
  'prefix',
  'suffix',
] as const;

/** All tag-policy inputs → one validated TagPolicy, or an InputError naming the input. */
export function tagPolicyFromInputs(read: InputReader): TagPolicy {
  const channelsRaw = read('channels');
  let channels = DEFAULT_CHANNELS;
  if (channelsRaw?.trim() === 'none') channels = [];
  else if (channelsRaw?.trim()) {
    channels = parsePairs('channels', channelsRaw).map(([pattern, channel]) => {
      if (channel === '') throw new InputError('channels', `'${pattern}' maps to an empty channel`);
      return { pattern, channel };
    });
  }
  const policy: TagPolicy = {
    images: parseList(read('images')),
    shaLength: parseInteger('sha-length', read('sha-length'), DEFAULT_POLICY.shaLength, { min: 4, max: 40 }),
    channels,
    timestamp: parseChoice('timestamp', read('timestamp'), ['off', 'commit', 'build'] as const, 'off'),
    semver: parseBool('semver', read('semver'), DEFAULT_POLICY.semver),
    semverLatest: parseChoice(
      'semver-latest',
      read('semver-latest'),
      ['highest', 'always', 'never'] as const,
      DEFAULT_POLICY.semverLatest,
    ),
    pr: parseBool('pr', read('pr'), DEFAULT_POLICY.pr),
    fullSha: parseBool('full-sha', read('full-sha'), DEFAULT_POLICY.fullSha),
    prefix: read('prefix')?.trim() ?? '',
    suffix: read('suffix')?.trim() ?? '',
  };
  validatePolicy(policy);
  return policy;
}
