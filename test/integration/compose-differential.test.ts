import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import {
  type ComposeModel,
  defaultComposeFiles,
  fromComposeConfig,
  composeServiceDefs,
  resolveCompose,
} from '../../src/lib/compose-model.ts';
import { serviceNeeds } from '../../src/stages/rolling.ts';

/**
 * The differential corpus: every project under test/fixtures/compose is resolved by lading's built-in resolver and
 * by the real `docker-compose config` of this machine (compose v1), and the two must agree on what lading uses:
 * services, images, build contexts/dockerfiles/args/targets, profiles, environment. A case.json beside the files
 * names the -f files, --env-file files, profiles and the shell environment of the case.
 */
const ROOT = new URL('../fixtures/compose/', import.meta.url).pathname;
const run = promisify(execFile);

interface Case {
  files?: string[];
  envFiles?: string[];
  profiles?: string[];
  env?: Record<string, string>;
  /** Both must refuse the project, with a message matching this. */
  error?: string;
  /** Where compose v1 and the compose spec differ: why, and what the built-in resolver gives (the spec). */
  differs?: string;
  expected?: Record<string, Record<string, unknown>>;
}

const cases = readdirSync(ROOT)
  .filter((d) => statSync(join(ROOT, d)).isDirectory() && /^\d+-/.test(d))
  .sort();

function readText(path: string): string | undefined {
  try {
    return statSync(path).isFile() ? readFileSync(path, 'utf8') : undefined;
  } catch {
    return undefined;
  }
}

function caseOf(dir: string): Case {
  const p = join(dir, 'case.json');
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as Case) : {};
}

function filesOf(dir: string, c: Case): string[] {
  return c.files && c.files.length > 0
    ? c.files.map((f) => join(dir, f))
    : defaultComposeFiles(dir, (p) => existsSync(p));
}

/** The part of the model the corpus compares. */
function view(model: ComposeModel) {
  return Object.fromEntries(
    Object.entries(model.services)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, s]) => [
        name,
        {
          image: s.image,
          build: s.build && {
            context: s.build.context,
            dockerfile: s.build.dockerfile,
            target: s.build.target,
            args: s.build.args,
          },
          profiles: [...s.profiles].sort(),
          environment: s.environment,
          ports: s.ports,
          volumes: s.volumes,
          dependsOn: s.dependsOn,
          secrets: s.secrets,
          configs: s.configs,
        },
      ]),
  );
}

const baseEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' };

/** `docker-compose config` of a case, parsed: run once per case (both checks below read it). */
const configs = new Map<string, Promise<Record<string, unknown>>>();
function composeConfigRaw(dir: string, c: Case): Promise<Record<string, unknown>> {
  let p = configs.get(dir);
  if (!p) {
    const args: string[] = ['--project-directory', dir];
    if (c.files && c.files.length > 0) for (const f of c.files) args.push('-f', join(dir, f));
    for (const f of c.envFiles ?? []) args.push('--env-file', join(dir, f));
    for (const pr of c.profiles ?? []) args.push('--profile', pr);
    args.push('config');
    p = limited(() => run('docker-compose', args, { cwd: dir, env: { ...baseEnv, ...c.env } })).then(
      ({ stdout }) => parse(stdout) as Record<string, unknown>,
    );
    configs.set(dir, p);
  }
  return p;
}

async function composeConfig(dir: string, c: Case): Promise<ComposeModel> {
  return fromComposeConfig(await composeConfigRaw(dir, c), { projectDir: dir, name: 'x', profiles: c.profiles ?? [] });
}

// Few compose processes at a time: the machine is shared (each v1 start costs about a second of CPU).
const LIMIT = 3;
let running = 0;
const waiting: Array<() => void> = [];
async function limited<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= LIMIT) await new Promise<void>((r) => waiting.push(r));
  running++;
  try {
    return await fn();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

describe('the built-in compose resolver agrees with docker-compose config', { concurrency: LIMIT }, () => {
  it('has a corpus of at least 30 projects', () => assert.ok(cases.length >= 30, `${cases.length} cases`));
  for (const name of cases) {
    it(name, async () => {
      const dir = join(ROOT, name);
      const c = caseOf(dir);
      const theirsP = composeConfig(dir, c);
      const resolve = () =>
        resolveCompose({
          files: filesOf(dir, c),
          projectDir: dir,
          env: { ...baseEnv, ...c.env },
          profiles: c.profiles ?? [],
          read: readText,
          ...(c.envFiles ? { envFiles: c.envFiles.map((f) => join(dir, f)) } : {}),
        });
      if (c.error) {
        const re = new RegExp(c.error);
        await assert.rejects(theirsP, (err: Error & { stderr?: string }) => re.test(err.stderr ?? err.message));
        assert.throws(resolve, re);
        return;
      }
      const theirs = view(await theirsP);
      const ours = view(resolve().model);
      if (c.differs) {
        for (const [svc, fields] of Object.entries(c.expected ?? {})) {
          for (const [k, v] of Object.entries(fields)) {
            assert.deepEqual((ours[svc] as Record<string, unknown>)[k], v, `built-in: services.${svc}.${k}`);
            assert.notDeepEqual((theirs[svc] as Record<string, unknown>)[k], v, `v1 now agrees: services.${svc}.${k}`);
            (theirs[svc] as Record<string, unknown>)[k] = v;
          }
        }
      }
      assert.deepEqual(ours, theirs);
    });
  }
});

/**
 * What the rolling plan reads of each service (stages/rolling.ts: what it needs started first, so the recreate
 * services' compose run goes before the rolling one's) against docker-compose config on the same corpus: depends_on,
 * links and volumes_from services, from the raw release files as a deploy has them.
 */
describe('the rolling plan reads what a service needs as docker-compose config does', { concurrency: LIMIT }, () => {
  const theirNeeds = (svc: Record<string, unknown>): string[] => {
    const dep = svc.depends_on;
    const names = Array.isArray(dep) ? dep.map(String) : Object.keys((dep as object | undefined) ?? {});
    for (const l of (svc.links as string[] | undefined) ?? []) names.push(l.split(':')[0]!);
    for (const v of (svc.volumes_from as string[] | undefined) ?? []) {
      const [kind, name] = v.split(':'); // v1 writes service:<name>:<mode> or container:<name>:<mode>
      if (kind === 'service') names.push(name!);
    }
    return [...new Set(names)].sort();
  };
  for (const name of cases) {
    const dir = join(ROOT, name);
    const c = caseOf(dir);
    if (c.error) continue;
    it(name, async () => {
      const theirs = (await composeConfigRaw(dir, c)).services as Record<string, Record<string, unknown>>;
      const ours = new Map<string, Set<string>>();
      const files = filesOf(dir, c).map((path) => ({ path, content: readText(path) ?? '' }));
      for (const defs of composeServiceDefs(files)) {
        for (const [svc, def] of Object.entries(defs)) {
          const set = ours.get(svc) ?? new Set<string>();
          for (const n of serviceNeeds(def)) set.add(n);
          ours.set(svc, set);
        }
      }
      for (const [svc, def] of Object.entries(theirs)) {
        assert.deepEqual([...(ours.get(svc) ?? [])].sort(), theirNeeds(def), `services.${svc}`);
      }
    });
  }
});
