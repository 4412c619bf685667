import { posix } from 'node:path';
import type { ComposeModel } from './compose-model.ts';
import type { ComposeAsset } from './manifest.ts';
import { LadingError } from './errors.ts';

/**
 * The local files a compose project needs on a host, besides its compose files: the project `.env`, every
 * `env_file:`, bind-mount sources inside the project directory (files and folders), and `configs:`/`secrets:` with
 * `file:`. Sources outside the project (absolute paths, `..`, `~`) are not shipped: the hosts must have them.
 * Pure: the caller walks folders and reads the files.
 */
export interface AssetSource {
  /** Absolute path on the runner. */
  abs: string;
  /** Relative to the project directory (the release directory on the host). */
  path: string;
  kind: Exclude<ComposeAsset['kind'], 'dir'>;
  /** A bind-mount source may be a folder (walked by the caller) or a file; the others are files. */
  mayBeDir: boolean;
  /** Missing is fine (env_file with required: false). */
  optional: boolean;
  mode: number;
}

export interface AssetPlan {
  sources: AssetSource[];
  /** Mount sources outside the project directory, for the hosts to have (absolute; `~` kept as written). */
  external: Array<{ path: string; service: string }>;
}

function inside(projectDir: string, abs: string): string | undefined {
  const rel = posix.relative(projectDir, abs);
  if (rel === '' || rel.startsWith('../') || rel === '..' || posix.isAbsolute(rel)) return undefined;
  return rel;
}

/**
 * `envFiles`: the .env files compose read; `composeFiles`: every compose file read besides the -f ones (extends and
 * include targets), shipped at their place in the project.
 */
export function planAssets(model: ComposeModel, envFiles: string[], composeFiles: string[] = []): AssetPlan {
  const sources = new Map<string, AssetSource>();
  const external = new Map<string, { path: string; service: string }>();
  const add = (abs: string, kind: AssetSource['kind'], opts: Partial<AssetSource> = {}, service = '(project)') => {
    const rel = abs.startsWith('~') ? undefined : inside(model.projectDir, abs);
    if (rel === undefined) {
      if (kind === 'env') return; // an --env-file elsewhere: its values travel in the release's .env
      if (kind === 'bind') {
        if (!external.has(abs)) external.set(abs, { path: abs, service });
        return;
      }
      throw new LadingError(
        `${service}: ${kind} ${abs} is outside the project directory ${model.projectDir}`,
        'keep env files, configs and secrets files inside the project (they are shipped with the release)',
      );
    }
    const prev = sources.get(rel);
    if (prev) {
      // one file used twice (e.g. env_file and bind): the stricter mode, never optional if anyone needs it
      prev.mode = Math.min(prev.mode, opts.mode ?? 0o644);
      prev.optional = prev.optional && (opts.optional ?? false);
      return;
    }
    sources.set(rel, {
      abs,
      path: rel,
      kind,
      mayBeDir: opts.mayBeDir ?? false,
      optional: opts.optional ?? false,
      mode: opts.mode ?? 0o644,
    });
  };
  for (const f of envFiles) add(f, 'env', { mode: 0o600 });
  for (const f of composeFiles) add(f, 'compose');
  for (const svc of Object.values(model.services)) {
    for (const e of svc.envFiles) add(e.path, 'env_file', { mode: 0o600, optional: !e.required }, svc.name);
    if (!svc.active) continue; // a profile that is off: its mounts need not exist on the hosts
    for (const v of svc.volumes) {
      if (v.type !== 'bind' || !v.source) continue;
      add(v.source, 'bind', { mayBeDir: true }, svc.name);
    }
  }
  for (const [name, c] of Object.entries(model.configs)) if (c.file) add(c.file, 'config', {}, `configs.${name}`);
  for (const [name, s] of Object.entries(model.secrets)) {
    if (s.file) add(s.file, 'secret', { mode: 0o600 }, `secrets.${name}`);
  }
  return {
    sources: [...sources.values()].sort((a, b) => a.path.localeCompare(b.path)),
    external: [...external.values()].sort((a, b) => a.path.localeCompare(b.path)),
  };
}

/** Refuses a bundle over the limit, naming its largest entries (so a data folder mounted by mistake is obvious). */
export function checkBundleSize(assets: Array<{ path: string; size: number }>, limitBytes: number): void {
  const total = assets.reduce((n, a) => n + a.size, 0);
  if (total <= limitBytes) return;
  const largest = [...assets]
    .sort((a, b) => b.size - a.size)
    .slice(0, 5)
    .map((a) => `${a.path} (${mib(a.size)})`);
  throw new LadingError(
    `the files shipped with the release (${assets.length}, ${mib(total)}) exceed the bundle limit of ${mib(limitBytes)}; largest: ${largest.join(', ')}`,
    'mount data folders from outside the project (an absolute path or a named volume), or raise bundle-size-limit',
  );
}

const mib = (n: number) => `${(n / 1048576).toFixed(n < 1048576 ? 2 : 1)} MiB`;
