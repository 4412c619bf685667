import { readFileSync } from 'node:fs';
import { parseBuildInputs, parseBuildJson, parseBuildTags } from '../settings/build.ts';
import { parseManifestInputs, parsePushJson } from '../settings/manifest.ts';
import { parsePushSettings } from '../settings/push.ts';
import { runBuildStage } from '../stages/build.ts';
import { runManifestStage } from '../stages/manifest.ts';
import { runPushStage } from '../stages/push.ts';
import { stderrReporter } from '../io/reporter.ts';
import { InputError } from '../lib/errors.ts';
import type { InputReader } from '../lib/tag-settings.ts';
import type { Command } from './args.ts';

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

export const buildCommand: Command = {
  name: 'build',
  summary: 'build one or many images (a list or compose services), image chains in dependency order',
  async run(read, flags) {
    const result = await runBuildStage({
      inputs: parseBuildInputs(read, process.env),
      tags: parseBuildTags(jsonFlag(jsonFlag(read, 'tags-json'), 'metadata')),
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
  async run(read, flags) {
    const result = await runPushStage({
      build: parseBuildJson(jsonFlag(read, 'build-json')),
      settings: parsePushSettings(read),
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
  async run(read, flags) {
    const inputs = parseManifestInputs(read);
    const result = await runManifestStage({
      inputs,
      pushed: parsePushJson(jsonFlag(read, 'push-json')),
      env: { ...process.env, RUNNER_TEMP: undefined },
      cwd: read('cwd') ?? process.cwd(),
      reporter: stderrReporter(),
    });
    process.stdout.write(flags.json ? result.text : `${result.path}\n`);
    return 0;
  },
};
