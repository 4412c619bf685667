import { posix } from 'node:path';
import type { ComposeModel } from './compose-model.ts';
import { LadingError } from './errors.ts';

/**
 * What the build takes from a compose project (compose-model.ts resolves it): the services' `image:` and `build:`.
 * Pure.
 */

export interface ComposeBuild {
  /** Relative to the workspace when inside it, else absolute (or a remote context as written). */
  context: string;
  dockerfile?: string;
  dockerfileInline?: string;
  target?: string;
  args: Record<string, string>;
  platforms: string[];
  labels: Record<string, string>;
  /** Build secrets: id → where the value comes from. */
  secrets: Array<{ id: string; file?: string; env?: string }>;
  additionalContexts: Record<string, string>;
}

export interface ComposeService {
  name: string;
  image?: string;
  build?: ComposeBuild;
}

/**
 * The services lading builds from a resolved compose project: all of them, whatever their profiles (a release can
 * then start any profile on the host), with paths relative to the workspace `cwd` when inside it. A build secret names a top-level secret: its file or environment variable.
 */
export function servicesFromModel(model: ComposeModel, cwd: string): ComposeService[] {
  const rel = (p: string) => {
    if (!p.startsWith('/')) return p;
    const r = posix.relative(cwd, p);
    return r === '' ? '.' : r.startsWith('..') ? p : r;
  };
  return Object.values(model.services).map((s) => {
    const svc: ComposeService = { name: s.name };
    if (s.image !== undefined) svc.image = s.image;
    if (s.build) {
      const b = s.build;
      svc.build = {
        context: rel(b.context),
        args: b.args,
        platforms: b.platforms,
        labels: b.labels,
        secrets: b.secrets.map((id) => {
          const top = model.secrets[id];
          if (!top) {
            throw new LadingError(
              `services.${s.name}.build.secrets: no top-level secret '${id}'`,
              'declare it under secrets: with file: or environment:',
            );
          }
          const out: { id: string; file?: string; env?: string } = { id };
          if (top.file) out.file = top.file;
          if (top.environment) out.env = top.environment;
          return out;
        }),
        additionalContexts: Object.fromEntries(
          Object.entries(b.additionalContexts).map(([k, v]) => [k, v.startsWith('/') ? rel(v) : v]),
        ),
      };
      if (b.dockerfile) svc.build.dockerfile = b.dockerfile;
      if (b.dockerfileInline !== undefined) svc.build.dockerfileInline = b.dockerfileInline;
      if (b.target) svc.build.target = b.target;
    }
    return svc;
  });
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
