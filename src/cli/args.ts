import { parseArgs } from 'node:util';
import { InputError } from '../lib/errors.ts';
import type { InputReader } from '../lib/tag-settings.ts';

export interface FlagSpec {
  name: string;
  /** Repeatable flags join their values with newlines, as list inputs expect. */
  multiple?: boolean;
  boolean?: boolean;
  help: string;
}

export interface Command {
  name: string;
  summary: string;
  flags: FlagSpec[];
  run(read: InputReader, flags: Record<string, string | boolean | undefined>): Promise<number>;
}

/** Env var that backs a flag on CI systems where flags are awkward: --sha-length → LADING_SHA_LENGTH. */
export function envName(flag: string): string {
  return `LADING_${flag.toUpperCase().replace(/-/g, '_')}`;
}

/** Parses argv for one command; flags win over LADING_* env vars. Unknown flags are an input error. */
export function parseCommandArgs(cmd: Command, argv: string[], env: NodeJS.ProcessEnv) {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {
    help: { type: 'boolean' },
  };
  for (const f of cmd.flags) options[f.name] = { type: f.boolean ? 'boolean' : 'string', multiple: !!f.multiple };
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({ args: argv, options, allowPositionals: false, strict: true }));
  } catch (err) {
    throw new InputError('arguments', (err as Error).message, `run 'lading ${cmd.name} --help'`);
  }
  const flags: Record<string, string | boolean | undefined> = {};
  for (const [k, v] of Object.entries(values)) flags[k] = Array.isArray(v) ? v.join('\n') : (v as string | boolean);
  const read: InputReader = (name) => {
    const v = flags[name];
    if (typeof v === 'string' && v !== '') return v;
    if (typeof v === 'boolean') return String(v);
    const fromEnv = env[envName(name)];
    return fromEnv === '' ? undefined : fromEnv;
  };
  return { flags, read };
}

export function commandHelp(cmd: Command): string {
  const width = Math.max(...cmd.flags.map((f) => f.name.length + (f.boolean ? 0 : 6)), 4) + 4;
  const lines = cmd.flags.map((f) => {
    const left = `--${f.name}${f.boolean ? '' : ' VALUE'}`;
    return `  ${left.padEnd(width)}${f.help}${f.boolean ? '' : ` [env ${envName(f.name)}]`}`;
  });
  return `lading ${cmd.name}: ${cmd.summary}\n\nUsage: lading ${cmd.name} [flags]\n\n${lines.join('\n')}\n  ${'--help'.padEnd(width)}this text\n`;
}
