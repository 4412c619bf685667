import { LadingError } from './errors.ts';

/**
 * Compose interpolation, every form of the compose specification: `$V`, `${V}`, `${V:-d}`, `${V-d}`, `${V:?e}`,
 * `${V?e}`, `${V:+r}`, `${V+r}`, `$$` (a literal `$`), and defaults/replacements that hold further expressions
 * (`${A:-${B:-x}}`). A variable used without a value becomes '' and is recorded in `missing` (compose warns).
 * A required one throws a LadingError naming the variable (callers add the file and key).
 */
export function interpolate(
  text: string,
  env: Record<string, string | undefined>,
  missing: Set<string> = new Set(),
): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c !== '$') {
      out += c;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (next === '{') {
      const end = closingBrace(text, i + 2);
      if (end === -1) throw new LadingError(`invalid interpolation: unclosed \${ in ${JSON.stringify(text)}`);
      out += expand(text.slice(i + 2, end), env, missing, text);
      i = end + 1;
      continue;
    }
    const bare = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i + 1));
    if (bare) {
      const value = env[bare[0]];
      if (value === undefined) missing.add(bare[0]);
      out += value ?? '';
      i += 1 + bare[0].length;
      continue;
    }
    out += '$';
    i++;
  }
  return out;
}

function closingBrace(text: string, from: number): number {
  let depth = 1;
  for (let j = from; j < text.length; j++) {
    if (text[j] === '{') depth++;
    else if (text[j] === '}' && --depth === 0) return j;
  }
  return -1;
}

function expand(body: string, env: Record<string, string | undefined>, missing: Set<string>, whole: string): string {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([\s\S]*))?$/.exec(body);
  if (!m) throw new LadingError(`invalid interpolation format \${${body}} in ${JSON.stringify(whole)}`);
  const [, name, op, arg = ''] = m as unknown as [string, string, string | undefined, string | undefined];
  const value = env[name];
  const unset = value === undefined;
  const empty = unset || value === '';
  switch (op) {
    case ':-':
      return empty ? interpolate(arg, env, missing) : value!;
    case '-':
      return unset ? interpolate(arg, env, missing) : value!;
    case ':+':
      return empty ? '' : interpolate(arg, env, missing);
    case '+':
      return unset ? '' : interpolate(arg, env, missing);
    case ':?':
    case '?':
      if (op === ':?' ? empty : unset) {
        const message = interpolate(arg, env, missing);
        throw new LadingError(`compose variable ${name} is required: ${message || (unset ? 'not set' : 'empty')}`);
      }
      return value!;
    default:
      if (unset) missing.add(name);
      return value ?? '';
  }
}

/**
 * A dotenv file as compose reads it (the project `.env`, `--env-file`, `env_file:`): `KEY=VALUE` lines, `#`
 * comments, an optional `export ` prefix, single quotes literal, double quotes with \n escapes, an unquoted value
 * ends at ` #`. `${VAR}` and `$VAR` in unquoted and double-quoted values are expanded from the variables earlier in
 * the file, then `lookup` (docker compose v2 does this; v1 keeps an unbraced `$VAR` literal).
 */
export function parseDotEnv(
  text: string,
  lookup: Record<string, string | undefined> = {},
  where = '.env',
): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  for (let n = 0; n < lines.length; n++) {
    let line = lines[n]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('export ')) line = line.slice(7).trim();
    const eq = line.indexOf('=');
    const key = (eq === -1 ? line : line.slice(0, eq)).trim();
    if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(key)) {
      throw new LadingError(`${where}:${n + 1}: '${key}' is not a variable name`, 'write KEY=VALUE lines');
    }
    if (eq === -1) {
      if (lookup[key] !== undefined) out[key] = lookup[key]!;
      continue;
    }
    let raw = line.slice(eq + 1).trim();
    const quote = raw[0];
    if (quote === "'" || quote === '"') {
      // a quoted value may span lines
      while (!closedQuote(raw, quote) && n + 1 < lines.length) raw += `\n${lines[++n]}`;
      const close = raw.lastIndexOf(quote);
      const inner = close > 0 ? raw.slice(1, close) : raw.slice(1);
      out[key] =
        quote === "'"
          ? inner
          : expandDotEnv(inner.replace(/\\n/g, '\n').replace(/\\"/g, '"'), { ...lookup, ...out }, where);
      continue;
    }
    const comment = raw.search(/\s#/);
    if (comment !== -1) raw = raw.slice(0, comment).trim();
    out[key] = expandDotEnv(raw, { ...lookup, ...out }, where);
  }
  return out;
}

function closedQuote(raw: string, quote: string): boolean {
  for (let i = 1; i < raw.length; i++) {
    if (raw[i] === '\\' && quote === '"') i++;
    else if (raw[i] === quote) return true;
  }
  return false;
}

function expandDotEnv(value: string, env: Record<string, string | undefined>, where: string): string {
  if (!value.includes('$')) return value;
  try {
    return interpolate(value, env);
  } catch (err) {
    throw new LadingError(`${where}: ${(err as Error).message}`);
  }
}
