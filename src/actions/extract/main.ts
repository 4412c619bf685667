import * as core from '@actions/core';
import { readExtractSettings } from '../../settings/extract.ts';
import { runExtractStage } from '../../stages/extract.ts';
import { coreReporter } from '../reporter.ts';
import { inputReader, runAction, writeSummary } from '../run.ts';

const readInput = inputReader('extract');

await runAction(async () => {
  const settings = readExtractSettings(readInput, process.env, process.cwd());
  const result = await runExtractStage({ settings, reporter: coreReporter });
  const files = result.files.filter((f) => f.type !== 'directory');
  core.setOutput('json', JSON.stringify(result));
  core.setOutput('files', files.map((f) => `${result.destination}${f.path}`).join('\n'));
  core.setOutput('digest', result.digest);
  core.setOutput('image-id', result.imageId);
  core.setOutput('destination', result.destination);
  core.setOutput('downloaded-bytes', String(result.layers.bytesDownloaded));
  await writeSummary((s) =>
    s
      .addHeading('lading: extract', 3)
      .addRaw(
        `${result.source} (${result.digest}) → ${result.destination}: ${files.length} file(s); ` +
          `layers read ${result.layers.read}/${result.layers.total}, blobs downloaded ${result.layers.downloaded}, ` +
          `from cache ${result.layers.cached}`,
        true,
      )
      .addTable([
        [
          { data: 'path', header: true },
          { data: 'type', header: true },
          { data: 'mode', header: true },
          { data: 'size', header: true },
          { data: 'sha256 / target', header: true },
        ],
        ...files
          .slice(0, 200)
          .map((f) => [f.path, f.type, f.mode, f.size === undefined ? '' : String(f.size), f.sha256 ?? f.target ?? '']),
      ]),
  );
});
