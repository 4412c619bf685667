import { parseBuildJson } from '../settings/build.ts';
import { parseExportInputs } from '../settings/export.ts';
import { runExportStage } from '../stages/export.ts';
import { runLoadStage } from '../stages/load.ts';
import { stderrReporter } from '../io/reporter.ts';
import { parseRetentionSettings, readLoadSettings } from '../settings/store.ts';
import { runRetentionStage } from '../stages/retention.ts';
import type { Command } from './args.ts';
import { jsonFlag } from './stages.ts';

export const exportCommand: Command = {
  name: 'export',
  summary: 'registry-less publish: docker save streamed, compressed and uploaded to S3, GCS or a directory',
  async run(read, flags) {
    const result = await runExportStage({
      build: parseBuildJson(jsonFlag(read, 'build-json')),
      inputs: parseExportInputs(read),
      env: process.env,
      reporter: stderrReporter(),
    });
    process.stdout.write(
      flags.json
        ? `${JSON.stringify(result, null, 2)}\n`
        : `${result.images.map((i) => `${i.id} ${i.digest} ${JSON.stringify(i.transport)}`).join('\n')}\n`,
    );
    return 0;
  },
};

export const loadCommand: Command = {
  name: 'load',
  summary: 'fetch registry-less images (by manifest or object) and docker load them, verified by sha256',
  async run(read, flags) {
    const result = await runLoadStage({ settings: await readLoadSettings(read), reporter: stderrReporter() });
    process.stdout.write(
      flags.json
        ? `${JSON.stringify(result, null, 2)}\n`
        : `${result.map((r) => `${r.id} ${r.imageId} ${r.present ? 'present' : 'loaded'}`).join('\n')}\n`,
    );
    return 0;
  },
};

export const retentionCommand: Command = {
  name: 'retention',
  summary: 'list (and with --apply delete) stored objects no recent manifest references',
  async run(read, flags) {
    const result = await runRetentionStage({ settings: parseRetentionSettings(read), reporter: stderrReporter() });
    process.stdout.write(
      flags.json ? `${JSON.stringify(result, null, 2)}\n` : `${result.unreferenced.map((o) => o.key).join('\n')}\n`,
    );
    return 0;
  },
};
