import * as core from '@actions/core';
import { parseStaleSettings } from '../../settings/stale.ts';
import { runStaleStage } from '../../stages/stale.ts';
import { coreReporter } from '../reporter.ts';
import { inputReader, runAction, writeSummary } from '../run.ts';

const readInput = inputReader('stale');

await runAction(async () => {
  const result = await runStaleStage({
    ...parseStaleSettings(readInput),
    env: process.env,
    cwd: process.env.GITHUB_WORKSPACE || process.cwd(),
    reporter: coreReporter,
  });
  core.setOutput('rebuild', result.rebuild.join('\n'));
  core.setOutput('any', String(result.rebuild.length > 0));
  core.setOutput('json', JSON.stringify(result));
  await writeSummary((s) =>
    s.addHeading('lading: stale images', 3).addTable([
      [
        { data: 'image', header: true },
        { data: 'rebuild', header: true },
        { data: 'why', header: true },
      ],
      ...result.images.map((i) => [
        i.id,
        i.stale ? 'yes' : 'no',
        [...i.reasons, ...i.notes].join('; ') || (i.newestTag ? `up to date (${i.newestTag})` : ''),
      ]),
    ]),
  );
});
