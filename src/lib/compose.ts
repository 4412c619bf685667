import { parse } from 'yaml';
import { InputError, LadingError } from './errors.ts';

/**
 * Reading compose files the way docker-compose does, for what lading needs: variable interpolation and the
 * services' `image:` and `build:` sections. Pure: callers pass file texts and the environment.
 */

/**
 * Compose interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err}, $VAR, $$ → $.
 * Missing variables become '' (as compose does, with a warning collected in `missing`).
 */
export function interpolate(
  text: string,
  env: Record<string, string | undefined>,
  missing: Set<string> = new Set(),
): string {
  return text.replace(
    /\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])((?:[^{}]|\{[^{}]*\})*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g,
    (match, braced: string | undefined, op: string | undefined, arg: string | undefined, bare: string | undefined) => {
      if (match === '$$') return '$';
      const name = (braced ?? bare)!;
      const value = env[name];
      const unset = value === undefined;
      const empty = unset || value === '';
      if (op === ':-') return empty ? interpolate(arg ?? '', env, missing) : value!;
      if (op === '-') return unset ? interpolate(arg ?? '', env, missing) : value!;
      if (op === ':?' && empty) throw new LadingError(`compose variable ${name} is required: ${arg || 'not set'}`);
      if (op === '?' && unset) throw new LadingError(`compose variable ${name} is required: ${arg || 'not set'}`);
      if (unset) missing.add(name);
      return value ?? '';
    },
  );
}

export interface ComposeBuild {
  context: string;
  dockerfile?: string;
  target?: string;
  args: Record<string, string>;
  platforms: string[];
}

export interface ComposeService {
  name: string;
  image?: string;
  build?: ComposeBuild;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function argsOf(raw: unknown, where: string): Record<string, string> {
  if (raw === undefined || raw === null) return {};
  if (Array.isArray(raw)) {
    return Object.fromEntries(
      raw.map((item) => {
        const s = String(item);
        const eq = s.indexOf('=');
        return eq === -1 ? [s, ''] : [s.slice(0, eq), s.slice(eq + 1)];
      }),
    );
  }
  if (isObj(raw)) return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, v === null ? '' : String(v)]));
  throw new LadingError(`${where}: build args must be a map or a list of KEY=VALUE`);
}

/** Joins a relative path onto a directory (POSIX, no I/O); absolute paths and URLs stay. */
export function joinPath(dir: string, path: string): string {
  if (path.startsWith('/') || /^[a-z]+:\/\//i.test(path) || path.startsWith('git@')) return path;
  const parts = `${dir}/${path}`.split('/');
  const out: string[] = [];
  for (const p of parts) {
    if (p === '' || p === '.') continue;
    if (p === '..' && out.length > 0 && out[out.length - 1] !== '..') out.pop();
    else out.push(p);
  }
  const joined = out.join('/');
  return dir.startsWith('/') ? `/${joined}` : joined || '.';
}

export function dirnameOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i === -1 ? '.' : i === 0 ? '/' : path.slice(0, i);
}

/**
 * Services of one or more compose files (later files override earlier ones, per key, as compose merges them).
 * Build contexts are resolved against the directory of the file that sets them.
 */
export function readComposeServices(
  files: Array<{ path: string; text: string }>,
  env: Record<string, string | undefined>,
): { services: ComposeService[]; missing: string[] } {
  const merged = new Map<string, ComposeService>();
  const missing = new Set<string>();
  for (const file of files) {
    let doc: unknown;
    try {
      doc = parse(interpolate(file.text, env, missing));
    } catch (err) {
      if (err instanceof LadingError)
        throw new LadingError(`${file.path}: ${err.message}`, 'set the variable in the environment');
      throw new InputError('compose-files', `${file.path} is not valid YAML: ${(err as Error).message}`);
    }
    if (!isObj(doc) || !isObj(doc.services)) {
      throw new InputError('compose-files', `${file.path} has no services: section`);
    }
    const dir = dirnameOf(file.path);
    for (const [name, raw] of Object.entries(doc.services)) {
      if (!isObj(raw)) continue;
      const svc = merged.get(name) ?? { name };
      if (typeof raw.image === 'string') svc.image = raw.image;
      if (raw.build !== undefined) {
        const where = `${file.path}: services.${name}.build`;
        const b = typeof raw.build === 'string' ? { context: raw.build } : isObj(raw.build) ? raw.build : undefined;
        if (!b) throw new InputError('compose-files', `${where} must be a path or a map`);
        const prev = svc.build;
        svc.build = {
          context: typeof b.context === 'string' ? joinPath(dir, b.context) : (prev?.context ?? joinPath(dir, '.')),
          args: { ...prev?.args, ...argsOf(b.args, where) },
          platforms: Array.isArray(b.platforms) ? b.platforms.map(String) : (prev?.platforms ?? []),
        };
        const dockerfile = typeof b.dockerfile === 'string' ? b.dockerfile : prev?.dockerfile;
        if (dockerfile) svc.build.dockerfile = dockerfile;
        const target = typeof b.target === 'string' ? b.target : prev?.target;
        if (target) svc.build.target = target;
      }
      merged.set(name, svc);
    }
  }
  return { services: [...merged.values()], missing: [...missing].sort() };
}
