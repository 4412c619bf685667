import * as core from '@actions/core';
import { parseManifestInputs, parsePushJson } from '../../settings/manifest.ts';
import { runManifestStage } from '../../stages/manifest.ts';
import { coreReporter } from '../reporter.ts';
import { inputReader, runAction, writeSummary } from '../run.ts';

const readInput = inputReader('manifest');

await runAction(async () => {
  const inputs = parseManifestInputs(readInput); // bad publish/notify inputs fail before anything is read or written
  const result = await runManifestStage({
    inputs,
    pushed: parsePushJson(readInput),
    env: process.env,
    cwd: process.env.GITHUB_WORKSPACE || process.cwd(),
    reporter: coreReporter,
  });
  core.setOutput('path', result.path);
  core.setOutput('json', JSON.stringify(result.manifest));
  core.setOutput('location', result.location ?? '');
  await writeSummary((s) =>
    s
      .addHeading('lading: manifest', 3)
      .addRaw(`<p>${result.manifest.source.sha.slice(0, 12)} → <code>${result.path}</code></p>`)
      .addTable([
        [
          { data: 'image', header: true },
          { data: 'services', header: true },
          { data: 'pinned', header: true },
        ],
        ...result.manifest.images.map((i) => [i.id, i.services.join(', '), i.ref]),
      ]),
  );
});
