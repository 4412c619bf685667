import { tagPolicyFromInputs } from '../lib/tag-settings.ts';
import { runTagsStage, tagsOutputs } from '../stages/tags.ts';
import { jsonFlag } from './stages.ts';
import type { Command } from './args.ts';

export const tagsCommand: Command = {
  name: 'tags',
  summary: 'compute the tags (and full image references) for the commit being built',
  async run(read, flags) {
    const policy = tagPolicyFromInputs(jsonFlag(read, 'metadata'));
    const ref = read('ref');
    const overrides: Record<string, string | undefined> = { sha: read('sha') };
    if (ref) {
      overrides.ref = ref;
      overrides.branch = ref.startsWith('refs/heads/') ? ref.slice(11) : ref.startsWith('refs/') ? undefined : ref;
      overrides.tag = ref.startsWith('refs/tags/') ? ref.slice(10) : undefined;
      if (!ref.startsWith('refs/')) overrides.ref = `refs/heads/${ref}`;
    }
    const result = await runTagsStage({ policy, env: process.env, cwd: read('cwd') ?? process.cwd(), overrides });
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
