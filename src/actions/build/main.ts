import * as core from '@actions/core';
import { parseBuildInputs, parseBuildTags } from '../../settings/build.ts';
import { runBuildStage } from '../../stages/build.ts';
import { coreReporter } from '../reporter.ts';
import { inputReader, runAction, writeSummary } from '../run.ts';

const readInput = inputReader('build');

await runAction(async () => {
  const result = await runBuildStage({
    inputs: parseBuildInputs(readInput, process.env),
    tags: parseBuildTags(readInput),
    env: process.env,
    cwd: process.env.GITHUB_WORKSPACE || process.cwd(),
    reporter: coreReporter,
  });
  core.setOutput('json', JSON.stringify(result));
  core.setOutput('refs', result.images.flatMap((i) => i.refs).join('\n'));
  core.setOutput('tags', result.tags.join('\n'));
  core.setOutput('primary', result.primary);
  core.setOutput('image-ids', JSON.stringify(Object.fromEntries(result.images.map((i) => [i.id, i.imageId ?? '']))));
  await writeSummary((s) =>
    s.addHeading('lading: build', 3).addTable([
      [
        { data: 'image', header: true },
        { data: 'services', header: true },
        { data: 'built on', header: true },
        { data: 'image id', header: true },
      ],
      ...result.images.map((i) => [
        i.name,
        i.services.join(', '),
        i.dependsOn.join(', '),
        (i.imageId ?? '').slice(0, 19),
      ]),
    ]),
  );
});
