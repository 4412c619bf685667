import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import type { AssetPlan, AssetSource } from '../lib/compose-assets.ts';
import type { ComposeAsset } from '../lib/manifest.ts';
import { parse } from 'yaml';
import {
  activeProfiles,
  composeDotEnv,
  type ComposeModel,
  defaultComposeFiles,
  fromComposeConfig,
  normalizeProjectName,
  type ResolvedCompose,
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
  /** The compose CLI to use; default: the one on this machine (findCompose), unless the resolver is builtin. */
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
  /** Compose files read besides the -f ones: extends and include targets (absolute). */
  otherFiles: string[];
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

function isEnvFileOf(model: ComposeModel, path: string): boolean {
  return Object.values(model.services).some((s) => s.envFiles.some((e) => e.path === path));
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
  /** The variables that have a value: compose's own process environment. */
  const setEnv = Object.fromEntries(Object.entries(opts.env).filter((e): e is [string, string] => e[1] !== undefined));
  let compose: ComposeCommand | undefined;
  if (resolver !== 'builtin') compose = opts.compose ?? (await findCompose(setEnv));
  if (resolver === 'compose' && !compose) {
    throw new LadingError(
      'compose-resolver is compose, but neither `docker compose` nor `docker-compose` is installed',
      'install compose on the runner, or set compose-resolver: auto',
    );
  }
  const builtin = () =>
    resolveCompose({ files, projectDir, env: opts.env, profiles, read: readText, ...(envFiles ? { envFiles } : {}) });
  /** The compose files read besides the -f ones (extends, include targets). */
  const otherFilesOf = (r: ResolvedCompose) => r.files.filter((f) => !files.includes(f) && !isEnvFileOf(r.model, f));
  if (!compose) {
    const r = builtin();
    return {
      model: r.model,
      env: r.env,
      files,
      envFiles: r.envFiles,
      otherFiles: otherFilesOf(r),
      missing: r.missing,
      via: 'built-in resolver',
    };
  }
  // the interpolation env (for the release's .env): the same .env files compose reads, under the process env
  const { env, files: readEnv } = composeDotEnv({ projectDir, envFiles, env: opts.env, read: readText });
  const v2 = compose.command.length > 1;
  const args = [...compose.command.slice(1), '--project-directory', projectDir];
  for (const f of files) args.push('-f', f);
  for (const f of envFiles ?? []) args.push('--env-file', f);
  const active = activeProfiles(profiles, env);
  // v2 prints only the services of active profiles: ask for all of them, the model marks which are active
  if (v2) args.push('--profile', '*');
  args.push('config');
  if (v2) args.push('--format', 'json');
  const { COMPOSE_PROFILES: _profiles, ...childEnv } = setEnv; // the profiles are the model's business (above)
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
  // the files compose read besides the -f ones (extends, include): found by the built-in resolver when it can
  let otherFiles: string[] = [];
  try {
    const r = builtin();
    otherFiles = otherFilesOf(r);
    // compose v1 folds env_file into environment and does not print it: the files to ship come from the resolver
    for (const [name, svc] of Object.entries(model.services)) {
      const mine = r.model.services[name];
      if (svc.envFiles.length === 0 && mine) svc.envFiles = mine.envFiles;
    }
  } catch {
    otherFiles = [];
  }
  return {
    model,
    env,
    files,
    envFiles: readEnv,
    otherFiles,
    missing: [],
    via: `${compose.command.join(' ')} ${compose.version}`,
  };
}

/**
 * Reads the files of an asset plan: folders walked (sorted), each file's size, sha256 and content (base64).
 * A symbolic link is refused (its target may be anywhere); a missing bind source or optional env_file is skipped.
 */
export async function collectAssets(plan: AssetPlan): Promise<ComposeAsset[]> {
  const out: ComposeAsset[] = [];
  const file = async (abs: string, path: string, kind: AssetSource['kind'], mode: number) => {
    const bytes = await readFile(abs);
    out.push({
      path,
      kind,
      size: bytes.length,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      mode,
      content: bytes.toString('base64'),
    });
  };
  const walk = async (abs: string, path: string, source: AssetSource): Promise<void> => {
    const st = await lstat(abs);
    if (st.isSymbolicLink()) {
      throw new LadingError(
        `${path} (shipped for compose: ${source.kind} ${source.path}) is a symbolic link`,
        'replace the link by the file, or mount its target by an absolute path that exists on the hosts',
      );
    }
    if (st.isDirectory()) {
      out.push({ path, kind: 'dir', size: 0, sha256: EMPTY_SHA256, mode: 0o755 });
      for (const name of (await readdir(abs)).sort()) await walk(join(abs, name), `${path}/${name}`, source);
    } else if (st.isFile()) await file(abs, path, source.kind, source.mode);
  };
  for (const s of plan.sources) {
    const st = await lstat(s.abs).catch(() => undefined);
    if (!st) {
      if (s.optional || s.kind === 'bind') continue;
      throw new LadingError(
        `${s.path} (${s.kind}) does not exist in the project`,
        'add it, or remove it from the compose files',
      );
    }
    if (!s.mayBeDir && st.isDirectory()) {
      throw new LadingError(`${s.path} (${s.kind}) is a folder, not a file`, 'point compose at a file');
    }
    await walk(s.abs, s.path, s);
  }
  return out;
}

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
