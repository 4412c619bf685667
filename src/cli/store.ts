import { runExportStage } from '../stages/export.ts';
import { runLoadStage } from '../stages/load.ts';
import { stderrReporter } from '../stages/reporter.ts';
import { runRetentionStage } from '../stages/retention.ts';
import type { Command } from './args.ts';
import { STORE_FLAGS } from './common-flags.ts';
import { jsonFlag } from './stages.ts';

export const exportCommand: Command = {
  name: 'export',
  summary: 'registry-less publish: docker save streamed, compressed and uploaded to S3, GCS or a directory',
  flags: [
    { name: 'build-json', help: 'output of lading build --json (@file or - for stdin)' },
    { name: 'store', help: 's3://bucket/prefix, gs://bucket/prefix or a directory' },
    {
      name: 'store-mode',
      help: 'archive (one object per image, default) | layers (one object per layer, deduplicated)',
    },
    { name: 'compression', help: 'zstd (default) | gzip | none' },
    { name: 'compression-level', help: 'level (zstd default 3, gzip default 6)' },
    {
      name: 'aliases',
      multiple: true,
      help: 'copies named <image>-<alias> (default: the channel, e.g. latest); "tags" = every tag',
    },
    ...STORE_FLAGS,
    { name: 'json', boolean: true, help: 'print the result as JSON (input of lading manifest --push-json)' },
  ],
  async run(read, flags) {
    const result = await runExportStage({
      read: jsonFlag(read, 'build-json'),
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
  flags: [
    { name: 'manifest', help: 'manifest: a file, JSON, s3://…, gs://… or https://…' },
    { name: 'images', multiple: true, help: 'image ids from the manifest (default: every stored image)' },
    { name: 'source', help: 'one object instead of a manifest, e.g. s3://bucket/images/app-latest.tar.zst' },
    { name: 'sha256', help: 'expected sha256 of the source object (default: its .json sidecar)' },
    ...STORE_FLAGS,
    { name: 'json', boolean: true, help: 'print what was loaded as JSON' },
  ],
  async run(read, flags) {
    const result = await runLoadStage({ read, reporter: stderrReporter() });
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
  flags: [
    { name: 'store', help: 's3://bucket/prefix or gs://bucket/prefix (where manifests/by-sha/ lives)' },
    { name: 'keep', help: 'manifests to keep, newest first (default 10)' },
    { name: 'apply', boolean: true, help: 'delete (default: dry run)' },
    ...STORE_FLAGS,
    { name: 'json', boolean: true, help: 'print the result as JSON' },
  ],
  async run(read, flags) {
    const result = await runRetentionStage({ read, reporter: stderrReporter() });
    process.stdout.write(
      flags.json ? `${JSON.stringify(result, null, 2)}\n` : `${result.unreferenced.map((o) => o.key).join('\n')}\n`,
    );
    return 0;
  },
};
