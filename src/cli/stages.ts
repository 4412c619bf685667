import { readFileSync } from 'node:fs';
import { runBuildStage } from '../stages/build.ts';
import { runManifestStage } from '../stages/manifest.ts';
import { runPushStage } from '../stages/push.ts';
import { stderrReporter } from '../stages/reporter.ts';
import { InputError } from '../lib/errors.ts';
import type { InputReader } from '../lib/tag-settings.ts';
import type { Command, FlagSpec } from './args.ts';
import { REGISTRY_FLAGS, STORE_FLAGS, without } from './common-flags.ts';
import { TAG_FLAGS } from './tags.ts';

/** `--build-json @file` reads a file, `--build-json -` reads stdin; anything else is the JSON itself. */
export function jsonFlag(read: InputReader, name: string): InputReader {
  return (n) => {
    const v = read(n);
    if (n !== name || v === undefined) return v;
    if (v === '-') return readFileSync(0, 'utf8');
    if (v.startsWith('@')) {
      try {
        return readFileSync(v.slice(1), 'utf8');
      } catch {
        throw new InputError(name, `cannot read ${v.slice(1)}`);
      }
    }
    return v;
  };
}

const BUILD_FLAGS: FlagSpec[] = [
  {
    name: 'images',
    help: 'images to build: names, or a YAML list of {name, context, dockerfile, target, build-args, platforms}',
  },
  { name: 'compose-files', multiple: true, help: 'compose files whose services with build: are built (repeatable)' },
  { name: 'tags-json', help: 'output of lading tags --json (@file or - for stdin); default: computed here' },
  { name: 'platforms', help: 'platforms (several need buildx)' },
  { name: 'build-args', multiple: true, help: 'KEY=VALUE for every image (repeatable)' },
  { name: 'labels', multiple: true, help: 'extra KEY=VALUE labels (repeatable)' },
  { name: 'cache-from', multiple: true, help: 'cache sources (repeatable)' },
  { name: 'cache-to', multiple: true, help: 'cache exports, buildx only (repeatable)' },
  { name: 'provenance', help: 'true | false (default false)' },
  { name: 'pull', help: 'true | false: pull newer external base images (default false)' },
  {
    name: 'only',
    multiple: true,
    help: 'rebuild only these image ids and what is built on them (lading stale --json rebuild)',
  },
  { name: 'cwd', help: 'the workspace (default: the current directory)' },
  { name: 'json', boolean: true, help: 'print the result as JSON (input of lading push --build-json)' },
];

export const buildCommand: Command = {
  name: 'build',
  summary: 'build one or many images (a list or compose services), image chains in dependency order',
  flags: [...BUILD_FLAGS, ...TAG_FLAGS.filter((f) => f.name !== 'images')],
  async run(read, flags) {
    const r = jsonFlag(read, 'tags-json');
    const result = await runBuildStage({
      read: r,
      env: process.env,
      cwd: read('cwd') ?? process.cwd(),
      reporter: stderrReporter(),
    });
    process.stdout.write(
      flags.json ? `${JSON.stringify(result, null, 2)}\n` : `${result.images.flatMap((i) => i.refs).join('\n')}\n`,
    );
    return 0;
  },
};

export const pushCommand: Command = {
  name: 'push',
  summary: 'push built images (GCR/Artifact Registry, ECR, any v2 registry) and read their digests back',
  flags: [
    { name: 'build-json', help: 'output of lading build --json (@file or - for stdin)' },
    ...REGISTRY_FLAGS,
    { name: 'ecr-create-repository', help: 'true | false: create missing ECR repositories' },
    { name: 'retries', help: 'attempts per push (default 4)' },
    { name: 'json', boolean: true, help: 'print the result as JSON (input of lading manifest --push-json)' },
  ],
  async run(read, flags) {
    const result = await runPushStage({
      read: jsonFlag(read, 'build-json'),
      env: process.env,
      reporter: stderrReporter(),
    });
    process.stdout.write(
      flags.json ? `${JSON.stringify(result, null, 2)}\n` : `${result.images.map((i) => i.ref).join('\n')}\n`,
    );
    return 0;
  },
};

export const manifestCommand: Command = {
  name: 'manifest',
  summary: 'write the deploy manifest (lading.manifest/v1) from the push result and the compose files',
  flags: [
    { name: 'push-json', help: 'output of lading push --json or lading export --json (@file or - for stdin)' },
    { name: 'compose-files', multiple: true, help: 'compose files to ship (default: the ones the build read)' },
    { name: 'compose-project', help: 'compose project name on the hosts' },
    { name: 'compose-env', multiple: true, help: 'extra KEY=VALUE for the compose files (repeatable)' },
    { name: 'manifest-path', help: 'where to write it (default ./lading-manifest.json)' },
    {
      name: 'manifest-store',
      help: 'also publish to s3://bucket/prefix or gs://bucket/prefix (by-sha, by-tag, channels)',
    },
    { name: 'notify-url', multiple: true, help: 'lading agents to notify with a signed webhook (repeatable)' },
    { name: 'notify-secret', help: 'the shared webhook secret (prefer LADING_NOTIFY_SECRET)' },
    { name: 'notify-format', help: 'lading (default) | github' },
    ...without(STORE_FLAGS, 'upload-concurrency'),
    { name: 'cwd', help: 'the workspace (default: the current directory)' },
    { name: 'json', boolean: true, help: 'print the manifest itself instead of its path' },
  ],
  async run(read, flags) {
    const result = await runManifestStage({
      read: jsonFlag(read, 'push-json'),
      env: { ...process.env, RUNNER_TEMP: undefined },
      cwd: read('cwd') ?? process.cwd(),
      reporter: stderrReporter(),
    });
    process.stdout.write(flags.json ? result.text : `${result.path}\n`);
    return 0;
  },
};
