import * as core from '@actions/core';
import { parseBuildJson } from '../../settings/build.ts';
import { parsePushSettings } from '../../settings/push.ts';
import { runPushStage } from '../../stages/push.ts';
import { coreReporter } from '../reporter.ts';
import { inputReader, runAction, writeSummary } from '../run.ts';

const readInput = inputReader('push');

await runAction(async () => {
  const result = await runPushStage({
    build: parseBuildJson(readInput),
    settings: parsePushSettings(readInput),
    env: process.env,
    reporter: coreReporter,
  });
  core.setOutput('json', JSON.stringify(result));
  core.setOutput('digests', JSON.stringify(Object.fromEntries(result.images.map((i) => [i.id, i.digest]))));
  core.setOutput('refs', result.images.map((i) => i.ref).join('\n'));
  await writeSummary((s) =>
    s.addHeading('lading: push', 3).addTable([
      [
        { data: 'image', header: true },
        { data: 'tags', header: true },
        { data: 'digest', header: true },
        { data: 'size', header: true },
        { data: 'registry', header: true },
      ],
      ...result.images.map((i) => [
        i.name,
        i.tags.join(', '),
        i.digest,
        i.size === undefined ? '' : `${(i.size / 1024 / 1024).toFixed(1)} MiB`,
        `${i.registry} (${i.provider})`,
      ]),
    ]),
  );
});
