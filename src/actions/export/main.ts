import * as core from '@actions/core';
import { formatBytes } from '../../io/archive.ts';
import { parseBuildJson } from '../../settings/build.ts';
import { parseExportInputs } from '../../settings/export.ts';
import { runExportStage } from '../../stages/export.ts';
import { coreReporter } from '../reporter.ts';
import { inputReader, runAction, writeSummary } from '../run.ts';

const readInput = inputReader('export');

await runAction(async () => {
  const result = await runExportStage({
    build: parseBuildJson(readInput),
    inputs: parseExportInputs(readInput),
    env: process.env,
    reporter: coreReporter,
  });
  core.setOutput('json', JSON.stringify(result));
  core.setOutput('digests', JSON.stringify(Object.fromEntries(result.images.map((i) => [i.id, i.digest]))));
  core.setOutput('refs', result.images.map((i) => i.ref).join('\n'));
  core.setOutput('uploaded-bytes', String(result.images.reduce((a, i) => a + i.uploaded, 0)));
  await writeSummary((s) =>
    s.addHeading('lading: export', 3).addTable([
      [
        { data: 'image', header: true },
        { data: 'image id', header: true },
        { data: 'object', header: true },
        { data: 'stored', header: true },
        { data: 'uploaded now', header: true },
      ],
      ...result.images.map((i) => {
        const t = i.transport;
        const where =
          t.kind === 's3'
            ? `s3://${t.bucket}/${t.key}`
            : t.kind === 'gcs'
              ? `gs://${t.bucket}/${t.object}`
              : t.kind === 'file'
                ? t.path
                : '';
        return [i.name, i.digest, where, formatBytes(i.size), formatBytes(i.uploaded)];
      }),
    ]),
  );
});
