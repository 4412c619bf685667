import { parse } from 'yaml';
import type { ComposeService } from './compose.ts';
import { InputError } from './errors.ts';
import { parseImageName } from './image-ref.ts';
import { interpolate } from './compose-interpolate.ts';

/** One image to build, from the `images` list input or from a compose service with `build:`. */
export interface ImageSpec {
  /** Unique key: the compose service name, or the `id` given, or the last part of the name. */
  id: string;
  /** Normalised image name without tag (see parseImageName). */
  name: string;
  /** Build context directory, relative to the workspace. */
  context: string;
  /** Dockerfile path relative to the context (compose semantics); default Dockerfile. */
  dockerfile?: string;
  target?: string;
  buildArgs: Record<string, string>;
  platforms: string[];
  /** Compose services that run this image. */
  services: string[];
  /** compose `build.dockerfile_inline`: the Dockerfile's text (then `dockerfile` is unused). */
  dockerfileInline?: string;
  /** compose `build.labels`. */
  labels?: Record<string, string>;
  /** compose `build.secrets`, resolved to their source (needs BuildKit). */
  secrets?: Array<{ id: string; file?: string; env?: string }>;
  /** compose `build.additional_contexts` (needs BuildKit). */
  additionalContexts?: Record<string, string>;
}

/** An ImageSpec placed in a build order, with its links to the images it is built on. */
export interface PlannedImage extends ImageSpec {
  /** Ids of images of this run this one is built on (build args or FROM lines naming them). */
  dependsOn: string[];
  /** Build args after chain substitution: an arg naming an upstream image points at the just-built one. */
  resolvedArgs: Record<string, string>;
  /** Local tags to put on upstream images before this one builds, so `FROM name:tag` sees the fresh image. */
  upstreamAliases: Array<{ id: string; ref: string }>;
}

const ID_RE = /^[a-z0-9][a-z0-9_.-]*$/;

/** `name:tag` / `name@digest` / `host:5000/name:tag` → the name part. */
export function stripTagAndDigest(ref: string): { name: string; tag?: string; digest?: string } {
  let rest = ref.trim();
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) return { name: rest.slice(0, colon), tag: rest.slice(colon + 1), digest };
  return { name: rest, digest };
}

function defaultId(name: string): string {
  const last = name.slice(name.lastIndexOf('/') + 1);
  return last.toLowerCase();
}

function stringMap(v: unknown, where: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v))
    throw new InputError('images', `${where} must be a map of NAME: value`);
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, x === null ? '' : String(x)]));
}

function stringList(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  if (Array.isArray(v)) return v.map(String);
  return String(v)
    .split(/[\s,]+/)
    .filter(Boolean);
}

const LIST_KEYS = new Set(['id', 'name', 'context', 'dockerfile', 'file', 'target', 'build-args', 'args', 'platforms']);

/**
 * The `images` input of the build: a YAML list of image names (context `.`) or of maps
 * (name, id, context, dockerfile, target, build-args, platforms).
 */
export function parseImageList(raw: string): ImageSpec[] {
  let doc: unknown;
  try {
    doc = parse(raw);
  } catch (err) {
    throw new InputError('images', `is not valid YAML: ${(err as Error).message}`);
  }
  if (typeof doc === 'string') doc = doc.split(/[\s,]+/).filter(Boolean);
  if (!Array.isArray(doc))
    throw new InputError('images', 'must be a list (one image name per line, or YAML list items)');
  const specs = doc.map((item, i): ImageSpec => {
    const where = `entry ${i + 1}`;
    const entry = typeof item === 'string' ? { name: item } : item;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw new InputError('images', `${where} must be an image name or a map with name:`);
    }
    const e = entry as Record<string, unknown>;
    const unknown = Object.keys(e).filter((k) => !LIST_KEYS.has(k));
    if (unknown.length > 0) {
      throw new InputError(
        'images',
        `${where} has unknown key(s) ${unknown.join(', ')}`,
        `use ${[...LIST_KEYS].join(', ')}`,
      );
    }
    if (typeof e.name !== 'string') throw new InputError('images', `${where} has no name:`);
    const { name } = parseImageName(e.name, `images (${where})`);
    const id = typeof e.id === 'string' ? e.id : defaultId(name);
    if (!ID_RE.test(id))
      throw new InputError('images', `${where}: id '${id}' must be lowercase letters, digits, _ . -`);
    const spec: ImageSpec = {
      id,
      name,
      context: typeof e.context === 'string' ? e.context : '.',
      buildArgs: stringMap(e['build-args'] ?? e.args, `${where} build-args`),
      platforms: stringList(e.platforms),
      services: [],
    };
    const dockerfile = e.dockerfile ?? e.file;
    if (typeof dockerfile === 'string') spec.dockerfile = dockerfile;
    if (typeof e.target === 'string') spec.target = e.target;
    return spec;
  });
  return checkUnique(specs);
}

function checkUnique(specs: ImageSpec[]): ImageSpec[] {
  const ids = new Map<string, ImageSpec>();
  const names = new Map<string, ImageSpec>();
  for (const s of specs) {
    if (ids.has(s.id)) {
      throw new InputError('images', `two images have the id '${s.id}'`, 'give one of them an explicit id:');
    }
    if (names.has(s.name)) throw new InputError('images', `'${s.name}' is listed twice`);
    ids.set(s.id, s);
    names.set(s.name, s);
  }
  return specs;
}

function sameBuild(a: ImageSpec, b: ImageSpec): boolean {
  return (
    a.context === b.context &&
    (a.dockerfile ?? 'Dockerfile') === (b.dockerfile ?? 'Dockerfile') &&
    a.target === b.target &&
    JSON.stringify(a.buildArgs) === JSON.stringify(b.buildArgs) &&
    JSON.stringify(a.platforms) === JSON.stringify(b.platforms) &&
    a.dockerfileInline === b.dockerfileInline &&
    JSON.stringify(a.labels ?? {}) === JSON.stringify(b.labels ?? {}) &&
    JSON.stringify(a.secrets ?? []) === JSON.stringify(b.secrets ?? []) &&
    JSON.stringify(a.additionalContexts ?? {}) === JSON.stringify(b.additionalContexts ?? {})
  );
}

/**
 * Compose services → images to build. Services sharing one image (the seed's app + celery) become one image
 * with both services; a service without build: whose image is built by another service joins that image.
 */
export function specsFromCompose(services: ComposeService[]): ImageSpec[] {
  const byName = new Map<string, ImageSpec>();
  for (const svc of services) {
    if (!svc.build) continue;
    if (!svc.image) {
      throw new InputError(
        'compose-files',
        `service '${svc.name}' has build: but no image:`,
        'add image: <registry>/<name>:${DOCKER_TAG:-latest} so lading knows where to push it',
      );
    }
    const { name } = parseImageName(stripTagAndDigest(svc.image).name, `compose-files (service ${svc.name})`);
    const spec: ImageSpec = {
      id: svc.name,
      name,
      context: svc.build.context,
      buildArgs: svc.build.args,
      platforms: svc.build.platforms,
      services: [svc.name],
    };
    if (svc.build.dockerfile) spec.dockerfile = svc.build.dockerfile;
    if (svc.build.target) spec.target = svc.build.target;
    if (svc.build.dockerfileInline !== undefined) spec.dockerfileInline = svc.build.dockerfileInline;
    if (Object.keys(svc.build.labels).length > 0) spec.labels = svc.build.labels;
    if (svc.build.secrets.length > 0) spec.secrets = svc.build.secrets;
    if (Object.keys(svc.build.additionalContexts).length > 0) spec.additionalContexts = svc.build.additionalContexts;
    const existing = byName.get(name);
    if (existing) {
      if (!sameBuild(existing, spec)) {
        throw new InputError(
          'compose-files',
          `services '${existing.services[0]}' and '${svc.name}' build the image '${name}' differently`,
          'give them the same build: section, or different image names',
        );
      }
      existing.services.push(svc.name);
    } else byName.set(name, spec);
  }
  for (const svc of services) {
    if (svc.build || !svc.image) continue;
    const spec = byName.get(stripTagAndDigest(svc.image).name.toLowerCase());
    if (spec && !spec.services.includes(svc.name)) spec.services.push(svc.name);
  }
  return checkUnique([...byName.values()]);
}

/**
 * The base images named by FROM lines of a Dockerfile, with ARGs declared before the first FROM (and the given
 * build args) substituted. Stage names (FROM x AS build … FROM build) are not bases.
 */
export function dockerfileBases(text: string, buildArgs: Record<string, string>): string[] {
  const lines = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/);
  const args: Record<string, string> = {};
  const stages = new Set<string>();
  const bases: string[] = [];
  let seenFrom = false;
  for (const raw of lines) {
    const line = raw.trim();
    const arg = /^ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/i.exec(line);
    if (arg && !seenFrom) {
      const value = buildArgs[arg[1]!] ?? (arg[2] ?? '').replace(/^["']|["']$/g, '');
      args[arg[1]!] = value;
      continue;
    }
    const from = /^FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (!from) continue;
    seenFrom = true;
    const image = interpolate(from[1]!, { ...args });
    if (!stages.has(image.toLowerCase()) && image !== 'scratch') bases.push(image);
    if (from[2]) stages.add(from[2].toLowerCase());
  }
  return bases;
}

/**
 * Orders the images so every image builds after the images of this run it is built on, and rewrites the links
 * so a downstream image always uses the just-built upstream (`localTag` is the tag each image gets locally).
 * `dockerfiles` maps image id → Dockerfile text (when readable) for FROM-line links. A cycle is an input error.
 */
export function planBuilds(
  specs: ImageSpec[],
  dockerfiles: Record<string, string | undefined>,
  localTag: string,
): PlannedImage[] {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const planned = new Map<string, PlannedImage>();
  for (const spec of specs) {
    const dependsOn = new Set<string>();
    const resolvedArgs: Record<string, string> = {};
    const upstreamAliases: Array<{ id: string; ref: string }> = [];
    for (const [k, v] of Object.entries(spec.buildArgs)) {
      const ref = stripTagAndDigest(v);
      const upstream = !ref.digest ? byName.get(ref.name.toLowerCase()) : undefined;
      if (upstream && upstream.id !== spec.id) {
        dependsOn.add(upstream.id);
        resolvedArgs[k] = `${upstream.name}:${localTag}`;
      } else resolvedArgs[k] = v;
    }
    const text = dockerfiles[spec.id];
    if (text !== undefined) {
      for (const base of dockerfileBases(text, resolvedArgs)) {
        const ref = stripTagAndDigest(base);
        if (ref.digest) continue; // pinned by digest: the user asked for exactly that image
        const upstream = byName.get(ref.name.toLowerCase());
        if (!upstream || upstream.id === spec.id) continue;
        dependsOn.add(upstream.id);
        const tag = ref.tag ?? 'latest';
        if (tag !== localTag) upstreamAliases.push({ id: upstream.id, ref: `${upstream.name}:${tag}` });
      }
    }
    planned.set(spec.id, { ...spec, dependsOn: [...dependsOn], resolvedArgs, upstreamAliases });
  }
  // Kahn's algorithm, keeping the given order among images that are ready together.
  const order: PlannedImage[] = [];
  const done = new Set<string>();
  while (order.length < planned.size) {
    const ready = [...planned.values()].find((p) => !done.has(p.id) && p.dependsOn.every((d) => done.has(d)));
    if (!ready) {
      const cycle = findCycle([...planned.values()].filter((p) => !done.has(p.id)));
      throw new InputError(
        'images',
        `the images build on each other in a cycle: ${cycle.join(' → ')}`,
        'break the cycle',
      );
    }
    order.push(ready);
    done.add(ready.id);
  }
  return order;
}

function findCycle(nodes: PlannedImage[]): string[] {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  for (const start of nodes) {
    const path: string[] = [];
    let cur: PlannedImage | undefined = start;
    while (cur && !path.includes(cur.id)) {
      path.push(cur.id);
      cur = cur.dependsOn.map((d) => byId.get(d)).find((n) => n !== undefined);
    }
    if (cur) return [...path.slice(path.indexOf(cur.id)), cur.id];
  }
  return nodes.map((n) => n.id);
}

/**
 * Narrows a build order to the images named in `only` (e.g. `lading stale --json`'s rebuild list) and every image
 * built on one of them, keeping chain order. Unknown ids are an input error.
 */
export function selectBuilds(order: PlannedImage[], only: string[]): PlannedImage[] {
  if (only.length === 0) return order;
  const known = new Set(order.map((o) => o.id));
  const unknown = only.filter((id) => !known.has(id));
  if (unknown.length > 0) {
    throw new InputError(
      'only',
      `no image ${unknown.join(', ')} in this build`,
      `the images are ${[...known].join(', ')}`,
    );
  }
  const chosen = new Set(only);
  for (const image of order) if (image.dependsOn.some((d) => chosen.has(d))) chosen.add(image.id); // order is topological
  return order.filter((o) => chosen.has(o.id));
}
