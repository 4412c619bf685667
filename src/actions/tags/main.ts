import * as core from '@actions/core';
import { tagPolicyFromInputs } from '../../lib/tag-settings.ts';
import { runTagsStage, tagsOutputs } from '../../stages/tags.ts';
import { inputReader, runAction, writeSummary } from '../run.ts';

const readInput = inputReader('tags');

await runAction(async () => {
  const result = await runTagsStage({
    policy: tagPolicyFromInputs(readInput),
    env: process.env,
    cwd: process.env.GITHUB_WORKSPACE || process.cwd(),
  });
  for (const w of result.plan.warnings) core.warning(w);
  for (const [name, value] of Object.entries(tagsOutputs(result))) core.setOutput(name, value);
  core.info(`tags for ${result.context.sha.slice(0, 12)} (${result.context.ref || 'no ref'}):`);
  for (const t of result.plan.tags) core.info(`  ${t}`);
  await writeSummary((s) =>
    s.addHeading('lading: tags', 3).addTable([
      [
        { data: 'tag', header: true },
        { data: 'kind', header: true },
      ],
      ...result.plan.tags.map((t) => [
        t,
        t === result.plan.primary ? 'primary' : t === result.plan.channel ? 'channel' : '',
      ]),
    ]),
  );
});
