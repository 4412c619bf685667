import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, resolve } from 'node:path';
import { parse } from 'yaml';
import { parseDotEnv } from '../lib/compose-interpolate.ts';
import {
  activeProfiles,
  type ComposeModel,
  defaultComposeFiles,
  fromComposeConfig,
  normalizeProjectName,
  resolveCompose,
} from '../lib/compose-model.ts';
import { LadingError } from '../lib/errors.ts';
import { capture } from './exec.ts';

/** How a compose project is read: compose itself when installed (auto), always compose, or always the built-in. */
export type ComposeResolver = 'auto' | 'compose' | 'builtin';

export interface ComposeCommand {
  command: string[];
  version: string;
}

export interface ComposeProjectOptions {
  /** The workspace: relative paths below are relative to it. */
  cwd: string;
  /** -f files in order; empty: compose's default file (+ its override) in projectDir. */
  files: string[];
  projectDir?: string;
  envFiles?: string[];
  profiles?: string[];
  env: Record<string, string | undefined>;
  resolver?: ComposeResolver;
  /** The compose CLI found on this machine (Docker.features().compose), if any. */
  compose?: ComposeCommand;
}

export interface ComposeProject {
  model: ComposeModel;
  /** The variables compose interpolates with (the .env files under the process env). */
  env: Record<string, string>;
  /** Absolute paths of the compose files named (or defaulted), in order. */
  files: string[];
  /** Absolute paths of the .env files read. */
  envFiles: string[];
  /** Variables used without a value (built-in resolver only; compose warns itself). */
  missing: string[];
  via: string;
}

function readText(path: string): string | undefined {
  try {
    return statSync(path).isFile() ? readFileSync(path, 'utf8') : undefined;
  } catch {
    return undefined;
  }
}

/** Finds compose on this machine without the engine: `docker compose` (v2 plugin), else `docker-compose` (v1). */
export async function findCompose(env: Record<string, string>): Promise<ComposeCommand | undefined> {
  const v2 = await capture('docker', ['compose', 'version', '--short'], { env }).catch(() => undefined);
  if (v2?.code === 0 && v2.stdout.trim()) return { command: ['docker', 'compose'], version: v2.stdout.trim() };
  const v1 = await capture('docker-compose', ['version', '--short'], { env }).catch(() => undefined);
  if (v1?.code === 0 && v1.stdout.trim()) return { command: ['docker-compose'], version: v1.stdout.trim() };
  return undefined;
}

/**
 * Reads a compose project as compose does: with compose's own `config` when it is installed (v2 JSON, v1 YAML),
 * else with the built-in resolver. Both give the same ComposeModel.
 */
export async function loadComposeProject(opts: ComposeProjectOptions): Promise<ComposeProject> {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(opts.cwd, p));
  const projectDir = opts.projectDir
    ? abs(opts.projectDir)
    : opts.files.length > 0
      ? dirname(abs(opts.files[0]!))
      : opts.cwd;
  const files = opts.files.length > 0 ? opts.files.map(abs) : defaultComposeFiles(projectDir, (p) => existsSync(p));
  for (const f of files) {
    if (readText(f) === undefined) throw new LadingError(`compose file ${f} does not exist`, 'check compose-files');
  }
  const envFiles = opts.envFiles?.map(abs);
  const profiles = opts.profiles ?? [];
  const resolver = opts.resolver ?? 'auto';
  const compose = resolver === 'builtin' ? undefined : opts.compose;
  if (resolver === 'compose' && !compose) {
    throw new LadingError(
      'compose-resolver is compose, but neither `docker compose` nor `docker-compose` is installed',
      'install compose on the runner, or set compose-resolver: auto',
    );
  }
  if (!compose) {
    const r = resolveCompose({
      files,
      projectDir,
      env: opts.env,
      profiles,
      read: readText,
      ...(envFiles ? { envFiles } : {}),
    });
    return { model: r.model, env: r.env, files, envFiles: r.envFiles, missing: r.missing, via: 'built-in resolver' };
  }
  // the interpolation env (for the release's .env): the same .env files compose reads, under the process env
  const dotenvFiles = envFiles ?? [resolve(projectDir, '.env')];
  const env: Record<string, string> = {};
  const readEnv: string[] = [];
  for (const f of dotenvFiles) {
    const text = readText(f);
    if (text === undefined) {
      if (envFiles) throw new LadingError(`env file ${f} does not exist`, 'check compose-env-file');
      continue;
    }
    readEnv.push(f);
    Object.assign(env, parseDotEnv(text, { ...opts.env, ...env }, f));
  }
  for (const [k, v] of Object.entries(opts.env)) if (v !== undefined) env[k] = v;
  const v2 = compose.command.length > 1;
  const args = [...compose.command.slice(1), '--project-directory', projectDir];
  for (const f of files) args.push('-f', f);
  for (const f of envFiles ?? []) args.push('--env-file', f);
  const active = activeProfiles(profiles, env);
  // v2 prints only the services of active profiles: ask for all of them, the model marks which are active
  if (v2) args.push('--profile', '*');
  args.push('config');
  if (v2) args.push('--format', 'json');
  const childEnv = Object.fromEntries(
    Object.entries(opts.env).filter((e): e is [string, string] => e[1] !== undefined && e[0] !== 'COMPOSE_PROFILES'),
  );
  const res = await capture(compose.command[0]!, args, { cwd: projectDir, env: childEnv });
  if (res.code !== 0) {
    throw new LadingError(
      `${compose.command.join(' ')} config refused the project:\n${res.stderr.trim() || res.stdout.trim()}`,
      'run the same compose config locally to see the problem; fix the compose files',
    );
  }
  let config: unknown;
  try {
    config = v2 ? JSON.parse(res.stdout) : parse(res.stdout);
  } catch (err) {
    throw new LadingError(`could not read compose config output: ${(err as Error).message}`);
  }
  const name = normalizeProjectName(env.COMPOSE_PROJECT_NAME || basename(projectDir));
  const model = fromComposeConfig(config, { projectDir, name, profiles: active });
  return {
    model,
    env,
    files,
    envFiles: readEnv,
    missing: [],
    via: `${compose.command.join(' ')} ${compose.version}`,
  };
}
