import { parseImageList } from '../lib/build-plan.ts';
import type { BuildContext, Env } from '../lib/context.ts';
import { parseSecretLines } from '../lib/docker-args.ts';
import { InputError } from '../lib/errors.ts';
import { type InputReader, readInputs } from '../lib/input-values.ts';
import { tagPolicyFromInputs } from '../lib/tag-settings.ts';
import type { TagPlan } from '../lib/tags.ts';
import type { BuildInputs, BuildResult, BuildSettings, TagsInput } from '../stages/build.ts';
import { parseRegistryLogin } from './common.ts';

/** What a build would build (`images`, `compose-files` and how compose reads them): also `stale`'s list. */
export function parseBuildList(
  read: InputReader,
): Pick<BuildInputs, 'images' | 'composeFiles' | 'composeEnvFiles' | 'composeResolver'> {
  const v = readInputs(read, ['images', 'compose-files', 'compose-env-file', 'compose-resolver']);
  return {
    images: v.images ? parseImageList(v.images) : [],
    composeFiles: v['compose-files'],
    composeEnvFiles: v['compose-env-file'],
    composeResolver: v['compose-resolver'],
  };
}

/** The build inputs (actions/build, the umbrella, `lading build`) → typed BuildInputs. `env` is checked for secret-envs. */
export function parseBuildInputs(read: InputReader, env: Env): BuildInputs {
  const v = readInputs(read, [
    'platforms',
    'cache-from',
    'cache-to',
    'provenance',
    'sbom',
    'pull',
    'no-cache',
    'ssh',
    'shm-size',
    'ulimit',
    'network',
    'push',
    'build-args',
    'labels',
    'only',
  ]);
  return {
    ...parseBuildList(read),
    platforms: v.platforms,
    cacheFrom: v['cache-from'],
    cacheTo: v['cache-to'],
    provenance: attestation('provenance', v.provenance, 'false'),
    sbom: attestation('sbom', v.sbom, ''),
    pull: v.pull,
    noCache: v['no-cache'],
    secrets: parseSecrets(read, env),
    ssh: v.ssh,
    ...(v['shm-size'] ? { shmSize: checked('shm-size', v['shm-size'], /^\d+(?:[kmgKMG]i?[bB]?|[bB])?$/) } : {}),
    ulimits: v.ulimit.map((u) => checked('ulimit', u, /^[a-z]+=-?\d+(?::-?\d+)?$/)),
    ...(v.network ? { network: checked('network', v.network, /^[\w.:-]+$/) } : {}),
    push: v.push,
    extraArgs: Object.fromEntries(v['build-args']),
    extraLabels: Object.fromEntries(v.labels),
    only: v.only,
    registry: parseRegistryLogin(read),
  };
}

function checked(name: string, value: string, re: RegExp): string {
  const v = value.trim();
  if (!re.test(v)) throw new InputError(name, `'${v}' is not a valid value`, 'see the input reference in the README');
  return v;
}

/** provenance / sbom: true, false, or buildx's attestation options (mode=max, generator=…). */
function attestation(name: string, raw: string | undefined, fallback: string): string {
  const v = raw?.trim() ?? '';
  if (v === '') return fallback;
  if (/^(true|false)$/i.test(v)) return v.toLowerCase();
  return checked(name, v, /^[a-z-]+=[^\s,]+(?:,[a-z-]+=[^\s,]+)*$/);
}

/** secrets (id=value), secret-files (id=path) and secret-envs (id=VARIABLE); every value is masked by the stage. */
function parseSecrets(read: InputReader, env: Env): BuildSettings['secrets'] {
  const v = readInputs(read, ['secrets', 'secret-files', 'secret-envs']);
  const out: BuildSettings['secrets'] = [];
  const add = (s: BuildSettings['secrets'][number], input: string) => {
    if (out.some((o) => o.id === s.id)) throw new InputError(input, `the secret id '${s.id}' is given twice`);
    out.push(s);
  };
  for (const s of parseSecretLines('secrets', v.secrets)) add({ ...s, from: 'value' }, 'secrets');
  for (const s of parseSecretLines('secret-files', v['secret-files'])) {
    const path = s.value.trim();
    if (path.includes(','))
      throw new InputError('secret-files', `the path of '${s.id}' contains a comma`, 'move the file');
    add({ id: s.id, value: path, from: 'file' }, 'secret-files');
  }
  for (const s of parseSecretLines('secret-envs', v['secret-envs'])) {
    const name = s.value.trim();
    if (env[name] === undefined)
      throw new InputError(
        'secret-envs',
        `'${s.id}' names the variable ${name}, which is not set`,
        `set ${name} in the step's env:`,
      );
    add({ id: s.id, value: name, from: 'env' }, 'secret-envs');
  }
  return out;
}

/** The build's tags: the tags step's json output (tags-json) when given, else the tag policy inputs. */
export function parseBuildTags(read: InputReader): TagsInput {
  const json = readInputs(read, ['tags-json'])['tags-json'];
  if (!json) return { policy: tagPolicyFromInputs(read, { images: false }) };
  try {
    const parsed = JSON.parse(json) as TagPlan & { context: BuildContext };
    if (!Array.isArray(parsed.tags) || !parsed.primary || !parsed.context?.sha) throw new Error('missing fields');
    return { result: { context: parsed.context, plan: parsed } };
  } catch (err) {
    throw new InputError('tags-json', `is not the json output of the tags step (${(err as Error).message})`);
  }
}

/** The build step's json output (`build-json`), checked enough to fail clearly on anything else. */
export function parseBuildJson(read: InputReader): BuildResult {
  const raw = readInputs(read, ['build-json'])['build-json'];
  if (!raw) throw new InputError('build-json', 'is empty', 'pass the json output of the build step');
  try {
    const build = JSON.parse(raw) as BuildResult;
    if (!Array.isArray(build.images) || !build.primary || !build.context?.sha) throw new Error('missing fields');
    return build;
  } catch (err) {
    throw new InputError('build-json', `is not the json output of the build step (${(err as Error).message})`);
  }
}
