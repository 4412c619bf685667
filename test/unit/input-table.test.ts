import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { cliError, commandFlags, commandHelp, parseCommandArgs } from '../../src/cli/args.ts';
import { InputError } from '../../src/lib/errors.ts';
import { parseEnvNames } from '../../src/lib/inputs.ts';
import { parseManifestInputs } from '../../src/settings/manifest.ts';
import {
  ACTIONS,
  type ActionName,
  actionHelp,
  actionInputs,
  type CommandName,
  commandInputs,
  defaultText,
  type InputDef,
  type InputId,
  inputName,
  INPUTS,
} from '../../src/lib/input-table.ts';
import { parseInputValue, readInputs } from '../../src/lib/input-values.ts';
import { REPO_ROOT } from '../helpers/bundles.ts';

const IDS = Object.keys(INPUTS) as InputId[];
const row = (id: InputId): InputDef => INPUTS[id];
const actionFile = (a: ActionName) => (a === 'lading' ? 'action.yml' : `actions/${a}/action.yml`);
interface YamlInput {
  description?: string;
  required?: boolean;
  default?: unknown;
}
const yamlInputs = (a: ActionName) =>
  (parse(readFileSync(join(REPO_ROOT, actionFile(a)), 'utf8')) as { inputs?: Record<string, YamlInput> }).inputs ?? {};

/** The commands main.ts registers (the CLI's own list). */
function registeredCommands(): CommandName[] {
  const main = readFileSync(join(REPO_ROOT, 'src', 'cli', 'main.ts'), 'utf8');
  const list = /const COMMANDS[^=]*=\s*\[([\s\S]*?)\]/.exec(main)?.[1] ?? '';
  return list
    .split(',')
    .map((s) => s.trim().replace(/Command$/, ''))
    .filter(Boolean) as CommandName[];
}

describe('the table of inputs (src/lib/input-table.ts)', () => {
  it('knows every action of the repository', () => {
    const dirs = readdirSync(join(REPO_ROOT, 'actions')).sort();
    assert.deepEqual([...ACTIONS].filter((a) => a !== 'lading').sort(), dirs);
  });

  for (const action of ACTIONS) {
    it(`is what ${actionFile(action)} declares: names, order, descriptions, defaults, required`, () => {
      const declared = yamlInputs(action);
      const expected = actionInputs(action);
      assert.deepEqual(
        Object.keys(declared),
        expected.map(inputName),
        `${actionFile(action)} inputs differ from the table: run 'npm run docs'`,
      );
      for (const id of expected) {
        const name = inputName(id);
        const y = declared[name]!;
        const required = (row(id).required ?? []).includes(action);
        assert.equal(y.required, required, `${name}: required`);
        assert.equal(y.description, actionHelp(id, action), `${name}: description`);
        if (required) assert.equal(y.default, undefined, `${name}: a required input has no default`);
        else assert.equal(y.default, defaultText(id), `${name}: default`);
      }
    });
  }

  it('gives every registered CLI command its flags from the table, and has no command it does not know', () => {
    const registered = registeredCommands();
    assert.ok(registered.length >= 15, registered.join(','));
    for (const c of registered) {
      const flags = commandFlags(c).map((f) => f.name);
      assert.ok(flags.length > 0, `${c} has flags`);
      assert.deepEqual(flags, commandInputs(c).map(inputName));
      assert.ok(flags.includes('json'), `${c} has --json`);
    }
    for (const id of IDS) {
      for (const c of row(id).commands ?? []) assert.ok(registered.includes(c), `${id}: ${c} is a registered command`);
    }
  });

  it('has rows that are well formed: used somewhere, unique names per action and command, defaults in bounds', () => {
    const places = new Map<string, string>();
    for (const id of IDS) {
      const r = row(id);
      const name = inputName(id);
      assert.match(name, /^[a-z][a-z0-9-]*$/, `${id}: kebab-case`);
      assert.ok((r.actions?.length ?? 0) + (r.commands?.length ?? 0) > 0, `${id} is taken by an action or command`);
      assert.match(r.help, /\S.*[.)]$/, `${id}: help is a sentence`);
      for (const a of r.required ?? []) assert.ok(r.actions?.includes(a), `${id}: required in ${a}, which takes it`);
      for (const a of Object.keys(r.helpIn ?? {}))
        assert.ok(r.actions?.includes(a as ActionName), `${id}: helpIn.${a} is an action that takes it`);
      for (const where of [
        ...(r.actions ?? []).map((a) => `action ${a}`),
        ...(r.commands ?? []).map((c) => `cli ${c}`),
      ]) {
        const key = `${where} ${name}`;
        assert.ok(!places.has(key), `${key} is given by both ${places.get(key)} and ${id}`);
        places.set(key, id);
      }
      if (r.kind === 'int') {
        assert.ok(r.min <= r.max, `${id}: min <= max`);
        if (r.default !== undefined) assert.ok(r.default >= r.min && r.default <= r.max, `${id}: default in bounds`);
      }
      if (r.kind === 'choice' && r.default !== undefined)
        assert.ok(r.choices.includes(r.default), `${id}: default is a choice`);
      if (r.kind === 'bool' && r.required?.length) assert.fail(`${id}: a boolean is never required`);
    }
  });

  it('marks the credentials secret', () => {
    for (const id of [
      'password',
      'google-credentials',
      'ssh-key',
      'ssh-passphrase',
      'notify-secret',
      'github-token',
      'secret',
    ] as const)
      assert.equal(row(id).secret, true, id);
  });
});

describe('readInputs: raw strings → typed values, defaults and bounds from the table', () => {
  const cases: Array<{ id: InputId; raw: string | undefined; want: unknown }> = [
    { id: 'sha-length', raw: undefined, want: 7 },
    { id: 'sha-length', raw: '', want: 7 },
    { id: 'sha-length', raw: ' 12 ', want: 12 },
    { id: 'compression-level', raw: undefined, want: undefined },
    { id: 'semver', raw: undefined, want: true },
    { id: 'semver', raw: 'false', want: false },
    { id: 'pull', raw: 'yes', want: true },
    { id: 's3-path-style', raw: undefined, want: undefined },
    { id: 's3-path-style', raw: 'false', want: false },
    { id: 'timestamp', raw: undefined, want: 'off' },
    { id: 'timestamp', raw: 'commit', want: 'commit' },
    { id: 'hosts', raw: 'a, b\nc\n# comment\n', want: ['a', 'b', 'c'] },
    { id: 'hosts', raw: undefined, want: [] },
    {
      id: 'build-args',
      raw: 'A=1\nB: 2',
      want: [
        ['A', '1'],
        ['B', '2'],
      ],
    },
    { id: 'root', raw: undefined, want: '/srv/lading' },
    { id: 'root', raw: ' /opt/x ', want: '/opt/x' },
    { id: 'prefix', raw: undefined, want: undefined },
    { id: 'ssh-key', raw: 'KEY\n', want: 'KEY\n' },
    { id: 'health-timeout', raw: undefined, want: 120 },
  ];
  for (const c of cases) {
    it(`${c.id} ${JSON.stringify(c.raw)} → ${JSON.stringify(c.want)}`, () => {
      assert.deepEqual(parseInputValue(c.id, c.raw), c.want);
    });
  }

  const bad: Array<{ id: InputId; raw: string; message: RegExp }> = [
    { id: 'sha-length', raw: '3', message: /input 'sha-length': 3 is out of range/ },
    { id: 'sha-length', raw: 'seven', message: /input 'sha-length': 'seven' is not a whole number/ },
    { id: 'semver', raw: 'maybe', message: /input 'semver': 'maybe' is not a boolean/ },
    { id: 'timestamp', raw: 'daily', message: /input 'timestamp': 'daily' is not one of/ },
    { id: 'build-args', raw: 'novalue', message: /input 'build-args': 'novalue' is not a key=value pair/ },
    {
      id: 'compose-secrets',
      raw: 'DB_USER=app\nhunter2',
      message:
        /^(?!.*hunter2).*input 'compose-secrets': item 2 \(not shown: the input is secret\) is not a key=value pair/,
    },
  ];
  for (const b of bad) {
    it(`refuses ${b.id} ${JSON.stringify(b.raw)}, naming the input`, () => {
      assert.throws(
        () => parseInputValue(b.id, b.raw),
        (e: unknown) => e instanceof InputError && b.message.test(e.message),
      );
    });
  }

  it('reads rows by their user-facing name (two rows may share one)', () => {
    const raw: Record<string, string> = { images: 'web\napi' };
    const v = readInputs((n) => raw[n], ['load-images', 'sha-length']);
    assert.deepEqual(v, { 'load-images': ['web', 'api'], 'sha-length': 7 });
  });
});

describe('CLI conventions', () => {
  const parseArgs = (cmd: CommandName, argv: string[], env: Record<string, string> = {}) =>
    parseCommandArgs(cmd, argv, env);

  const ok: Array<{
    cmd: CommandName;
    argv: string[];
    env?: Record<string, string>;
    read: Record<string, string | undefined>;
  }> = [
    { cmd: 'build', argv: ['--pull'], read: { pull: 'true' } },
    { cmd: 'build', argv: ['--no-pull'], read: { pull: 'false' } },
    { cmd: 'build', argv: ['--pull=false'], read: { pull: 'false' } },
    { cmd: 'build', argv: ['--pull', 'false'], read: { pull: 'false' } },
    { cmd: 'build', argv: ['--no-pull'], env: { LADING_PULL: 'true' }, read: { pull: 'false' } },
    { cmd: 'build', argv: [], env: { LADING_PULL: 'true' }, read: { pull: 'true' } },
    { cmd: 'tags', argv: ['--sha-length', '9'], read: { 'sha-length': '9' } },
    { cmd: 'tags', argv: ['--sha-length=9'], read: { 'sha-length': '9' } },
    { cmd: 'tags', argv: ['--prefix=a=b'], read: { prefix: 'a=b' } },
    { cmd: 'deploy', argv: ['--hosts', 'a', '--hosts', 'b'], read: { hosts: 'a\nb' } },
    { cmd: 'deploy', argv: [], env: { LADING_SSH_USER: 'deploy' }, read: { 'ssh-user': 'deploy', root: undefined } },
    { cmd: 'stale', argv: ['--images', 'a', '--images', 'b'], read: { images: 'a\nb' } },
  ];
  for (const c of ok) {
    it(`lading ${c.cmd} ${c.argv.join(' ')}${c.env ? ` with ${JSON.stringify(c.env)}` : ''}`, () => {
      const args = parseArgs(c.cmd, c.argv, c.env);
      for (const [k, v] of Object.entries(c.read)) assert.equal(args.read(k), v, k);
    });
  }

  it('-h and --help on every command, showing only its own flags', () => {
    for (const cmd of ['tags', 'deploy', 'notify', 'retention'] as const) {
      assert.equal(parseArgs(cmd, ['-h']).help, true);
      assert.equal(parseArgs(cmd, ['--help']).help, true);
    }
    const help = commandHelp({ name: 'tags', summary: 'compute tags', run: async () => 0 }).replace(/\s+/g, ' ');
    assert.match(help, /--sha-length VALUE +length of the short sha \[default 7; env LADING_SHA_LENGTH\]/);
    assert.match(help, /--semver, --no-semver/);
    assert.match(help, /--timestamp VALUE .*\[off \| commit \| build; default off/);
    assert.doesNotMatch(help, /--hosts|--ssh-key|--store/);
    const deploy = commandHelp({ name: 'deploy', summary: 'deploy', run: async () => 0 }).replace(/\s+/g, ' ');
    assert.match(deploy, /--ssh-key VALUE .*\[secret: prefer env LADING_SSH_KEY\]/);
    assert.doesNotMatch(deploy, /--sha-length|--to /);
  });

  const refused: Array<{ cmd: CommandName; argv: string[]; message: RegExp }> = [
    { cmd: 'tags', argv: ['--hosts', 'a'], message: /^unknown flag --hosts — run 'lading tags --help'/ },
    { cmd: 'tags', argv: ['main'], message: /^unexpected argument 'main'/ },
    { cmd: 'tags', argv: ['--sha-length'], message: /^--sha-length: needs a value/ },
    { cmd: 'build', argv: ['--no-pull=true'], message: /^--no-pull: takes no value/ },
    { cmd: 'tags', argv: ['--no-prefix'], message: /^unknown flag --no-prefix/ },
  ];
  for (const r of refused) {
    it(`refuses lading ${r.cmd} ${r.argv.join(' ')}, naming the flag`, () => {
      let caught: unknown;
      try {
        parseArgs(r.cmd, r.argv);
      } catch (e) {
        caught = e;
      }
      assert.ok(caught instanceof InputError, 'an input error (exit 2)');
      const shown = cliError(caught, undefined) as Error & { describe(): string };
      assert.match(shown.describe(), r.message);
    });
  }

  it('names the flag, or the LADING_ variable the value came from, in an input error', () => {
    const fromFlag = parseArgs('tags', ['--sha-length', '3']);
    const err = new InputError('sha-length', '3 is out of range', 'use 4 to 40');
    assert.equal((cliError(err, fromFlag) as Error).message, '--sha-length: 3 is out of range');
    const fromEnv = parseArgs('tags', [], { LADING_SHA_LENGTH: '3' });
    assert.equal((cliError(err, fromEnv) as Error).message, 'LADING_SHA_LENGTH: 3 is out of range');
    const other = new InputError('images[0].context', 'is missing');
    assert.equal(cliError(other, fromFlag), other, 'an error about something that is not a flag is left alone');
  });
});

describe('defaults live in the table only', () => {
  it('the host script takes timeouts, TTLs and counts from the runner, with no fallback of its own', () => {
    const host = readFileSync(join(REPO_ROOT, 'src', 'lib', 'remote', 'host.sh'), 'utf8');
    for (const v of ['HEALTH_TIMEOUT', 'HEALTH_STABLE', 'LOCK_WAIT', 'LOCK_TTL', 'KEEP']) {
      assert.doesNotMatch(host, new RegExp(`\\$\\{LADING_${v}:-`), `LADING_${v} has no default in host.sh`);
      assert.match(host, new RegExp(`\\$\\{LADING_${v}:\\?`), `LADING_${v} is required by host.sh`);
    }
  });
});

describe('the edges read only inputs of the table', () => {
  /** Every .ts file under a folder of src/. */
  const filesUnder = (dir: string): string[] =>
    readdirSync(join(REPO_ROOT, dir), { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? filesUnder(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
    );

  it('names a row of the table in every raw read of the settings parsers, the CLI and the action mains', () => {
    const names = new Set(IDS.map(inputName));
    const read = /\b(?:read|readInput)\('([a-z0-9-]+)'\)|\breadText\(read, '([a-z0-9-]+)'\)/g;
    const unknown: string[] = [];
    let checked = 0;
    for (const f of ['settings', 'cli', 'actions'].flatMap((d) => filesUnder(join('src', d)))) {
      for (const m of readFileSync(join(REPO_ROOT, f), 'utf8').matchAll(read)) {
        const name = m[1] ?? m[2]!;
        checked++;
        if (!names.has(name)) unknown.push(`${f}: ${name}`);
      }
    }
    assert.ok(checked > 20, `the scan finds the raw reads (${checked})`);
    assert.deepEqual(unknown, [], 'an input read that no row of src/lib/input-table.ts declares');
  });

  it('leaves no stage or adapter reading a raw input: they take typed settings', () => {
    const raw: string[] = [];
    for (const f of ['stages', 'io'].flatMap((d) => filesUnder(join('src', d)))) {
      const text = readFileSync(join(REPO_ROOT, f), 'utf8');
      if (/\bread\('[a-z0-9-]+'\)|\bInputReader\b/.test(text)) raw.push(f);
    }
    assert.deepEqual(raw, [], 'parse the inputs at the edge (src/settings/) and pass the typed settings in');
  });
});

describe('KEY=VALUE inputs are one pair per line: a value keeps its commas', () => {
  // split on commas, DATABASE_URL below became two pairs (its query's "b=2" a variable of its own) and a password
  // with a comma was cut or refused
  const table: Array<[string, string, Array<[string, string]>]> = [
    ['a URL query', 'DATABASE_URL=postgres://db/app?a=1,b=2', [['DATABASE_URL', 'postgres://db/app?a=1,b=2']]],
    [
      'a list value',
      'ALLOWED_HOSTS=a.example,b.example\nDEBUG=0',
      [
        ['ALLOWED_HOSTS', 'a.example,b.example'],
        ['DEBUG', '0'],
      ],
    ],
    ['a password', 'DB_PASSWORD=x,y:z', [['DB_PASSWORD', 'x,y:z']]],
    [
      'CRLF, blank and # lines',
      '# comment\r\nA=1\r\n\r\nB: two words\r\n',
      [
        ['A', '1'],
        ['B', 'two words'],
      ],
    ],
  ];
  for (const [what, raw, want] of table) {
    it(what, () => {
      assert.deepEqual(parseInputValue('compose-secrets', raw), want);
      assert.deepEqual(parseInputValue('build-args', raw), want);
    });
  }
  it('a line that is no pair is still refused, by position for a secret input', () => {
    assert.throws(
      () => parseInputValue('compose-secrets', 'A=1\nhunter2'),
      /item 2 \(not shown: the input is secret\)/,
    );
  });
});

describe("the manifest's compose-env: names, or NAME=VALUE lines kept whole", () => {
  it('a NAME=VALUE line keeps its commas; a line of names may list several', () => {
    assert.deepEqual(parseEnvNames('compose-env', 'API_URL=https://x/?a=1,b=2\nDB_URL, REDIS_URL\n# note\n'), [
      ['API_URL', 'https://x/?a=1,b=2'],
      ['DB_URL', undefined],
      ['REDIS_URL', undefined],
    ]);
  });
  it('the manifest step reads it so (a value with a comma was split into a second, bogus name)', () => {
    const inputs = parseManifestInputs((n) => (n === 'compose-env' ? 'API_URL=https://x/?a=1,b=2' : undefined));
    assert.deepEqual(inputs.composeEnv, [['API_URL', 'https://x/?a=1,b=2']]);
  });
  it('a bad name is refused, naming the input', () => {
    assert.throws(() => parseEnvNames('compose-env', 'OK, 9BAD'), /input 'compose-env'.*'9BAD' is not a variable name/);
  });
});
