import { LadingError } from './errors.ts';

/** Quotes a value for POSIX sh: single quotes, with embedded quotes as '\''. NUL cannot be passed and is refused. */
export function shellQuote(value: string): string {
  if (value.includes('\0')) throw new LadingError('a value for the remote shell contains a NUL byte');
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** `export NAME='value'` lines; names must be shell variable names. */
export function envAssignments(vars: Record<string, string>): string {
  return Object.entries(vars)
    .map(([k, v]) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new LadingError(`'${k}' is not a shell variable name`);
      return `export ${k}=${shellQuote(v)}`;
    })
    .join('\n');
}
