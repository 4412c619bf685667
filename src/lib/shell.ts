import { LadingError } from './errors.ts';
import { ENV_NAME_RE } from './inputs.ts';

/** Quotes a value for POSIX sh: single quotes, with embedded quotes as '\''. NUL cannot be passed and is refused. */
export function shellQuote(value: string): string {
  if (value.includes('\0')) throw new LadingError('a value for the remote shell contains a NUL byte');
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** `export NAME='value'` lines; names must be shell variable names. */
export function envAssignments(vars: Record<string, string>): string {
  return Object.entries(vars)
    .map(([k, v]) => {
      if (!ENV_NAME_RE.test(k)) throw new LadingError(`'${k}' is not a shell variable name`);
      return `export ${k}=${shellQuote(v)}`;
    })
    .join('\n');
}
