import * as core from '@actions/core';
import { parsePipelineSettings } from '../../settings/pipeline.ts';
import { runPipeline } from '../../stages/pipeline.ts';
import { tagsOutputs } from '../../stages/tags.ts';
import { coreReporter } from '../reporter.ts';
import { inputReader, runAction, writeSummary } from '../run.ts';

const readInput = inputReader('lading');

// The umbrella action (action.yml at the repository root): one node24 process runs tags → build → push/export →
// manifest, so the build sees ACTIONS_RUNTIME_TOKEN / ACTIONS_RESULTS_URL (cache type=gha) and no JSON crosses env.
await runAction(async () => {
  const r = await runPipeline({
    settings: parsePipelineSettings(readInput, process.env),
    env: process.env,
    cwd: process.env.GITHUB_WORKSPACE || process.cwd(),
    reporter: coreReporter,
  });
  const t = tagsOutputs(r.tags);
  for (const name of ['tags', 'primary', 'version', 'channel', 'sha', 'labels'] as const) core.setOutput(name, t[name]);
  const images = r.published?.images ?? [];
  core.setOutput('refs', images.map((i) => i.ref).join('\n'));
  core.setOutput('digests', JSON.stringify(Object.fromEntries(images.map((i) => [i.id, i.digest]))));
  core.setOutput('image-ids', JSON.stringify(Object.fromEntries(r.build.images.map((i) => [i.id, i.imageId ?? '']))));
  core.setOutput('manifest-path', r.manifest?.path ?? '');
  core.setOutput('manifest', r.manifest ? JSON.stringify(r.manifest.manifest) : '');
  core.setOutput('manifest-location', r.manifest?.location ?? '');
  await writeSummary((s) =>
    s
      .addHeading('lading', 3)
      .addRaw(
        `<p>${r.tags.context.sha.slice(0, 12)}: ${r.tags.plan.tags.map((x) => `<code>${x}</code>`).join(' ')}</p>`,
      )
      .addTable([
        [
          { data: 'image', header: true },
          { data: 'services', header: true },
          { data: 'pinned', header: true },
        ],
        ...r.build.images.map((b) => [
          b.name,
          b.services.join(', '),
          images.find((i) => i.id === b.id)?.ref ?? '(not pushed)',
        ]),
      ]),
  );
});
