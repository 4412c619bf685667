import { InputError } from './errors.ts';

/**
 * Pure parsers from the raw strings an action input, a CLI flag or an env var carries to typed values.
 * Each one names the input in its error so the user knows which line to fix.
 */

/** A shell and compose variable name: letters, digits and _, not starting with a digit. */
export const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `name` when it is a variable name (ENV_NAME_RE); otherwise an error naming `input` (and `where` it was found). */
export function checkEnvName(input: string, name: string, where?: string): string {
  if (!ENV_NAME_RE.test(name)) {
    throw new InputError(
      input,
      `${where ? `${where}: ` : ''}'${name}' is not a variable name`,
      'use letters, digits and _, not starting with a digit (KEY=VALUE)',
    );
  }
  return name;
}

/** The lines of an input, trimmed; blank lines and `#` comment lines are dropped. */
function parseLines(raw: string | undefined): string[] {
  return (raw ?? '')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith('#'));
}

/**
 * Variable names, each with a value or not: a `NAME=VALUE` line is one name and its whole value (commas and all);
 * another line is one or more names, comma separated. Names are checked (ENV_NAME_RE); errors name `input`.
 */
export function parseEnvNames(input: string, raw: string | undefined): Array<[string, string | undefined]> {
  return parseLines(raw).flatMap((line): Array<[string, string | undefined]> => {
    const eq = line.indexOf('=');
    if (eq !== -1) return [[checkEnvName(input, line.slice(0, eq).trim()), line.slice(eq + 1).trim()]];
    return line
      .split(',')
      .map((n) => n.trim())
      .filter(Boolean)
      .map((n) => [checkEnvName(input, n), undefined]);
  });
}

/** A list given one item per line or comma separated; blank items and `#` comment lines are dropped. */
export function parseList(raw: string | undefined): string[] {
  return parseLines(raw)
    .flatMap((line) => line.split(','))
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

const TRUE = new Set(['true', 'True', 'TRUE', 'yes', 'on', '1']);
const FALSE = new Set(['false', 'False', 'FALSE', 'no', 'off', '0']);

export function parseBool(name: string, raw: string | undefined, fallback: boolean): boolean {
  const value = raw?.trim();
  if (value === undefined || value === '') return fallback;
  if (TRUE.has(value)) return true;
  if (FALSE.has(value)) return false;
  throw new InputError(name, `'${value}' is not a boolean`, 'use true or false');
}

export function parseInteger(
  name: string,
  raw: string | undefined,
  fallback: number,
  range: { min: number; max: number },
): number {
  const value = raw?.trim();
  if (value === undefined || value === '') return fallback;
  if (!/^-?\d+$/.test(value)) throw new InputError(name, `'${value}' is not a whole number`);
  const n = Number(value);
  if (n < range.min || n > range.max) {
    throw new InputError(name, `${n} is out of range`, `use a number from ${range.min} to ${range.max}`);
  }
  return n;
}

export function parseChoice<T extends string>(
  name: string,
  raw: string | undefined,
  choices: readonly T[],
  fallback: T,
): T {
  const value = raw?.trim();
  if (value === undefined || value === '') return fallback;
  if ((choices as readonly string[]).includes(value)) return value as T;
  throw new InputError(name, `'${value}' is not one of the accepted values`, `use one of: ${choices.join(', ')}`);
}

/**
 * `key=value` pairs, one per line (never split on commas: a value may hold them — `ALLOWED_HOSTS=a.com,b.com`, a
 * password, a URL's query — as build-push-action keeps build-args and labels whole). Order is kept (first match wins
 * where that matters). `key: value` is accepted too, so YAML-looking maps pasted into an input work; `#` lines and
 * blank lines are skipped. A `secret` input's bad item is named by its position, never quoted.
 */
export function parsePairs(name: string, raw: string | undefined, secret = false): Array<[string, string]> {
  return parseLines(raw).map((item, i) => {
    const m = /^([^=:]+?)\s*[=:]\s*(.*)$/.exec(item);
    if (!m || m[1] === undefined || m[2] === undefined || m[1].trim() === '') {
      // a secret input's item is named by its position: its text may be the secret itself
      const what = secret ? `item ${i + 1} (not shown: the input is secret)` : `'${item}'`;
      throw new InputError(name, `${what} is not a key=value pair`, 'write one pair per line, like main=latest');
    }
    return [m[1].trim(), m[2].trim()];
  });
}

/** 1048576, 512k, 10m, 1MiB … → bytes (1k to 64m). */
export function parseSize(name: string, raw: unknown, fallback: number): number {
  return parseByteSize(name, raw, fallback, { min: 1024, max: 64 * 1024 * 1024, range: '1k to 64m' });
}

/** 1048576, 512k, 10m, 8g, 1GiB … → bytes, within `bounds`. */
export function parseByteSize(
  name: string,
  raw: unknown,
  fallback: number,
  bounds: { min: number; max: number; range: string },
): number {
  if (raw === undefined || raw === null) return fallback;
  const m = /^(\d+)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?$/i.exec(String(raw).trim());
  const g = bounds.max > 64 * 1024 * 1024;
  if (!m)
    throw new InputError(
      name,
      `'${String(raw)}' is not a size`,
      `write bytes, or a number with k or m${g ? ' or g' : ''} (KiB, MiB${g ? ', GiB' : ''})`,
    );
  const unit = (m[2] ?? 'b').toLowerCase();
  const scale = unit.startsWith('g') ? 1024 ** 3 : unit.startsWith('m') ? 1024 ** 2 : unit.startsWith('k') ? 1024 : 1;
  const n = Number(m[1]) * scale;
  if (n < bounds.min || n > bounds.max) throw new InputError(name, `${n} bytes is out of range`, `use ${bounds.range}`);
  return n;
}
