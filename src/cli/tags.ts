import { runTagsStage, tagsOutputs } from '../stages/tags.ts';
import type { Command, FlagSpec } from './args.ts';

/** The tag-policy flags, shared by every command that computes tags. */
export const TAG_FLAGS: FlagSpec[] = [
  { name: 'images', multiple: true, help: 'image name to produce full references for (repeatable)' },
  { name: 'sha-length', help: 'length of the short sha (default 7)' },
  {
    name: 'channels',
    multiple: true,
    help: 'branch=channel rules, globs allowed (default main=latest,master=latest,stage=stage; none = off)',
  },
  { name: 'timestamp', help: 'off | commit | build: add a sortable UTC timestamp tag (default off)' },
  { name: 'semver', help: 'true | false: 1.2.3, 1.2, 1 on version tags (default true)' },
  { name: 'semver-latest', help: 'highest | always | never: when a version tag also gets latest (default highest)' },
  { name: 'pr', help: 'true | false: pr-<n> on pull requests (default true)' },
  { name: 'full-sha', help: 'true | false: the full sha as a tag (default false)' },
  { name: 'prefix', help: 'prefix for every tag' },
  { name: 'suffix', help: 'suffix for every tag' },
];

export const tagsCommand: Command = {
  name: 'tags',
  summary: 'compute the tags (and full image references) for the commit being built',
  flags: [
    ...TAG_FLAGS,
    { name: 'sha', help: 'the commit to tag (default: from CI variables, else git HEAD)' },
    { name: 'ref', help: 'the ref being built, e.g. refs/heads/main (default: from CI variables, else git)' },
    { name: 'cwd', help: 'the git checkout (default: the current directory)' },
    { name: 'json', boolean: true, help: 'print everything as JSON' },
  ],
  async run(read, flags) {
    const ref = read('ref');
    const overrides: Record<string, string | undefined> = { sha: read('sha') };
    if (ref) {
      overrides.ref = ref;
      overrides.branch = ref.startsWith('refs/heads/') ? ref.slice(11) : ref.startsWith('refs/') ? undefined : ref;
      overrides.tag = ref.startsWith('refs/tags/') ? ref.slice(10) : undefined;
      if (!ref.startsWith('refs/')) overrides.ref = `refs/heads/${ref}`;
    }
    const result = await runTagsStage({ read, env: process.env, cwd: read('cwd') ?? process.cwd(), overrides });
    for (const w of result.plan.warnings) process.stderr.write(`warning: ${w}\n`);
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(JSON.parse(tagsOutputs(result).json ?? '{}'), null, 2)}\n`);
    } else {
      const refs = result.plan.images.flatMap((i) => i.refs);
      process.stdout.write(`${(refs.length > 0 ? refs : result.plan.tags).join('\n')}\n`);
    }
    return 0;
  },
};
