import { runExtractStage } from '../stages/extract.ts';
import { stderrReporter } from '../stages/reporter.ts';
import type { Command } from './args.ts';
import { REGISTRY_FLAGS, STORE_FLAGS, without } from './common-flags.ts';

export const extractCommand: Command = {
  name: 'extract',
  summary: 'copy paths out of an image (registry, exported object or manifest entry) without a Docker engine',
  flags: [
    {
      name: 'image',
      help: 'registry image (host/repo:tag or @sha256:…); with --manifest, the entry (id, service, name)',
    },
    {
      name: 'source',
      help: 'exported object: s3://…, gs://…, /path or https URL (docker save archive or .index.json)',
    },
    { name: 'manifest', help: 'lading manifest (file, s3://, gs://, https://) whose entry --image names' },
    { name: 'sha256', help: 'expected sha256 of the --source object' },
    { name: 'paths', multiple: true, help: 'image paths to copy, files or directories (repeatable)' },
    { name: 'destination', help: 'directory to copy into; each path keeps its image path below it' },
    { name: 'platform', help: 'platform of a multi-platform image (default linux/amd64)' },
    { name: 'cache-dir', help: 'blob cache by digest (default ~/.cache/lading/extract, or $RUNNER_TEMP)' },
    ...REGISTRY_FLAGS,
    ...without(STORE_FLAGS, 'upload-concurrency'),
    { name: 'json', boolean: true, help: 'print the result as JSON' },
  ],
  async run(read, flags) {
    const result = await runExtractStage({ read, reporter: stderrReporter(), env: process.env });
    process.stdout.write(
      flags.json
        ? `${JSON.stringify(result, null, 2)}\n`
        : result.files
            .filter((f) => f.type !== 'directory')
            .map((f) => `${f.sha256 ?? `-> ${f.target}`}  ${result.destination}${f.path}\n`)
            .join(''),
    );
    return 0;
  },
};
