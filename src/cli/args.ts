import { InputError, LadingError } from '../lib/errors.ts';
import {
  type CommandName,
  commandInputs,
  type InputDef,
  type InputId,
  inputName,
  INPUTS,
  defaultText,
} from '../lib/input-table.ts';
import type { InputReader } from '../lib/input-values.ts';

/** A CLI command. Its flags are the rows of the table of inputs (src/lib/input-table.ts) that name it. */
export interface Command {
  name: CommandName;
  summary: string;
  /** Words the command takes besides flags (`status | release`, `-- COMMAND [ARG...]`), for the usage line. */
  positionals?: string;
  run(read: InputReader, flags: Record<string, string | boolean | undefined>, positionals: string[]): Promise<number>;
}

/** A command's flag as the parser and the help see it. */
export interface Flag {
  id: InputId;
  name: string;
  row: InputDef;
  bool: boolean;
  repeatable: boolean;
}

/** A command's flags, in table order. */
export function commandFlags(command: CommandName): Flag[] {
  return commandInputs(command).map((id) => {
    const row: InputDef = INPUTS[id];
    return {
      id,
      name: inputName(id),
      row,
      bool: row.kind === 'bool',
      repeatable: row.kind === 'list' || row.kind === 'pairs' || !!row.repeatable,
    };
  });
}

/** Env var that backs a flag on CI systems where flags are awkward: --sha-length → LADING_SHA_LENGTH. */
export function envName(flag: string): string {
  return `LADING_${flag.toUpperCase().replace(/-/g, '_')}`;
}

const POSITIONAL: Partial<Record<CommandName, string>> = { maintenance: 'maintenance' };

const BOOL_WORDS = new Set(['true', 'false', 'yes', 'no', 'on', 'off', '1', '0']);

export interface ParsedArgs {
  help: boolean;
  flags: Record<string, string | boolean | undefined>;
  /** Raw value by flag name: the flag when given, else its LADING_* env var. */
  read: InputReader;
  /** Where a flag's value came from: `--name` or the env var (for error messages). */
  origin(name: string): string | undefined;
  /** Words that are not flags (commands that take them), and everything after `--` as given. */
  positionals: string[];
  /** Secrets given as flags (visible in the process list and shell history): the CLI warns about each. */
  warnings: string[];
}

/**
 * Parses argv for one command. Conventions: `--name value` and `--name=value`; boolean flags take no value
 * (`--pull`, `--no-pull`; `--pull=false` and `--pull false` are accepted too); list flags repeat; `-h`/`--help`.
 * Flags win over LADING_* env vars. Unknown flags, stray arguments and missing values are input errors naming the flag.
 */
export function parseCommandArgs(
  command: CommandName,
  argv: string[],
  env: NodeJS.ProcessEnv,
  opts: { positionals?: boolean } = {},
): ParsedArgs {
  const specs = commandFlags(command);
  // a command's one positional argument fills a flag: `lading maintenance on` = `--maintenance on`
  const positional = POSITIONAL[command];
  if (positional && argv[0] !== undefined && !argv[0].startsWith('-')) argv = [`--${positional}`, ...argv];
  const byName = new Map(specs.map((f) => [f.name, f]));
  const values: Record<string, string | boolean | undefined> = {};
  const lists: Record<string, string[]> = {};
  const hint = `run 'lading ${command} --help'`;
  let help = false;
  const positionals: string[] = [];
  const warnings: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') {
      help = true;
      continue;
    }
    if (opts.positionals && arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    const m = /^--([a-z0-9][a-z0-9-]*)(?:=([\s\S]*))?$/.exec(arg);
    if (!m && opts.positionals && !arg.startsWith('-')) {
      positionals.push(arg);
      continue;
    }
    if (!m) {
      throw new InputError(
        'arguments',
        arg.startsWith('-') ? `unknown flag ${arg}` : `unexpected argument '${arg}'`,
        hint,
      );
    }
    let name = m[1]!;
    let inline = m[2];
    let flag = byName.get(name);
    if (!flag && name.startsWith('no-') && byName.get(name.slice(3))?.bool) {
      name = name.slice(3);
      flag = byName.get(name)!;
      if (inline !== undefined) throw new InputError(`--no-${name}`, 'takes no value', `write --${name}=${inline}`);
      inline = 'false';
    }
    if (!flag) throw new InputError('arguments', `unknown flag --${name}`, hint);
    if (flag.bool) {
      let v = inline;
      if (v === undefined && argv[i + 1] !== undefined && BOOL_WORDS.has(argv[i + 1]!)) v = argv[++i];
      values[name] = v ?? 'true';
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new InputError(`--${name}`, 'needs a value', hint);
    if (flag.row.secret || (flag.row.secretPairs && value.includes('='))) {
      warnings.push(
        `--${name} puts a secret in the process arguments (visible to other users in ps, kept in shell history): set ${envName(name)} instead`,
      );
    }
    if (flag.repeatable) (lists[name] ??= []).push(value);
    else values[name] = value;
  }
  for (const [k, v] of Object.entries(lists)) values[k] = v.join('\n');
  const flags: Record<string, string | boolean | undefined> = { ...values };
  for (const f of specs) if (f.bool && typeof values[f.name] === 'string') flags[f.name] = values[f.name] === 'true';
  const read: InputReader = (name) => {
    const v = values[name];
    if (typeof v === 'string' && v !== '') return v;
    const fromEnv = env[envName(name)];
    return fromEnv === '' ? undefined : fromEnv;
  };
  const origin = (name: string) => {
    if (!byName.has(name)) return undefined;
    if (values[name] !== undefined) return `--${name}`;
    return env[envName(name)] ? envName(name) : `--${name}`;
  };
  return { help, flags, read, origin, positionals, warnings };
}

/** An input error says which flag (or LADING_* variable) to fix; other errors pass unchanged. */
export function cliError(err: unknown, args: Pick<ParsedArgs, 'origin'> | undefined): unknown {
  if (!(err instanceof InputError)) return err;
  const problem = err.message.replace(/^input '[^']*': /, '');
  if (err.input === 'arguments' || err.input.startsWith('--')) {
    return new LadingError(err.input === 'arguments' ? problem : `${err.input}: ${problem}`, err.hint);
  }
  const origin = args?.origin(err.input);
  if (!origin) return err;
  return new LadingError(`${origin}: ${problem}`, err.hint);
}

/** Wraps text to the width, continuation lines indented. */
function wrap(text: string, width: number, indent: number): string {
  const words = text.split(/\s+/);
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    if (line && line.length + 1 + w.length > width) {
      lines.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(line);
  return lines.join(`\n${' '.repeat(indent)}`);
}

/** The help line of one flag: its help, the choices, the default, repeatability and the env var. */
function flagHelp(f: Flag): string {
  // The action.yml sentence as a help line: no final period, lower case unless it starts with an acronym (SSH, S3).
  const text = (f.row.cli ?? f.row.help.replace(/^[A-Z](?=[a-z])/, (c) => c.toLowerCase())).replace(/\.$/, '');
  const notes: string[] = [];
  if (f.row.kind === 'choice') notes.push(f.row.choices.join(' | '));
  const d = defaultText(f.id);
  if (d !== '' && !(f.bool && d === 'false')) notes.push(`default ${d}`);
  if (f.repeatable && !/repeatable/.test(text)) notes.push('repeatable');
  if (f.name !== 'json') notes.push(f.row.secret ? `secret: prefer env ${envName(f.name)}` : `env ${envName(f.name)}`);
  return notes.length ? `${text} [${notes.join('; ')}]` : text;
}

/** `lading <command> --help`: the command's own flags only, from the table. */
export function commandHelp(cmd: Command): string {
  const specs = commandFlags(cmd.name);
  const left = (f: Flag) =>
    f.bool ? `--${f.name}${defaultText(f.id) === 'true' ? ', --no-' + f.name : ''}` : `--${f.name} VALUE`;
  const width = Math.min(Math.max(...specs.map((f) => left(f).length), 10) + 2, 34);
  const lines = specs.map((f) => {
    const l = left(f);
    const pad = l.length + 2 > width ? `\n  ${' '.repeat(width)}` : ' '.repeat(width - l.length);
    return `  ${l}${pad}${wrap(flagHelp(f), 116 - width, width + 2)}`;
  });
  lines.push(`  ${'-h, --help'.padEnd(width)}this text`);
  const words = cmd.positionals ? ` ${cmd.positionals}` : '';
  return `lading ${cmd.name}: ${cmd.summary}\n\nUsage: lading ${cmd.name} [flags]${words}\n\n${lines.join('\n')}\n`;
}
