import { InputError } from './errors.ts';

/**
 * Docker image names, per the distribution reference grammar: an optional registry host (with port),
 * then path components of lowercase alphanumerics joined by `.`, `_`, `__` or runs of `-`.
 */
export interface ImageName {
  /** Registry host (with port) as written, or '' for Docker Hub. */
  registry: string;
  /** Repository path, lowercased. */
  path: string;
  /** registry/path, or path alone for Docker Hub. */
  name: string;
}

export const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const HOST_RE =
  /^(?:localhost|\[[0-9a-fA-F:.]+\]|(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])(?:\.(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]))*)(?::\d{1,5})?$/;

export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

/** The longest Docker tag. */
export const MAX_TAG = 128;

/** Replaces each run of characters outside [A-Za-z0-9._-] with `-` and strips leading `.`/`-`. */
export function sanitizeRefPart(value: string): string {
  return value.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[.-]+/, '');
}

/**
 * Parses and normalises an image name given by the user (`input` names where it came from, for errors).
 * The repository path is lowercased; a tag or digest in the name is refused (tags come from the tag policy).
 */
export function parseImageName(raw: string, input = 'images'): ImageName {
  const value = raw.trim();
  if (value === '') throw new InputError(input, 'an image name is empty');
  if (value.includes('@')) {
    throw new InputError(
      input,
      `'${value}' contains a digest`,
      'give the image name only; lading adds tags and digests',
    );
  }
  const slash = value.indexOf('/');
  const first = slash === -1 ? '' : value.slice(0, slash);
  const isHost = first !== '' && (first.includes('.') || first.includes(':') || first === 'localhost');
  const registry = isHost ? first : '';
  const rest = isHost ? value.slice(slash + 1) : value;
  const lastSegment = rest.slice(rest.lastIndexOf('/') + 1);
  if (lastSegment.includes(':')) {
    throw new InputError(
      input,
      `'${value}' contains a tag`,
      'give the image name without ":tag"; tags come from the tag policy',
    );
  }
  if (registry && !HOST_RE.test(registry)) {
    throw new InputError(input, `'${value}': '${registry}' is not a valid registry host`);
  }
  const path = rest.toLowerCase();
  const components = path.split('/');
  const bad = components.find((c) => !COMPONENT_RE.test(c));
  if (bad !== undefined) {
    throw new InputError(
      input,
      `'${value}' is not a valid image name (${bad === '' ? 'empty path component' : `'${bad}'`})`,
      'use lowercase letters, digits and . _ - separated by /, like registry.example.com/team/app',
    );
  }
  const name = registry ? `${registry}/${path}` : path;
  if (name.length > 255) throw new InputError(input, `'${value}' is longer than 255 characters`);
  return { registry, path, name };
}
