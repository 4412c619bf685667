import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { type Command, commandFlags, commandHelp } from '../../src/cli/args.ts';
import { REPO_ROOT } from '../helpers/bundles.ts';
import { exampleFiles, loadWorkflow, ourAction, ourWorkflow, strings } from '../helpers/workflows.ts';

/** Every Command exported by src/cli/*.ts (main.ts only wires them up and runs on import). */
async function cliCommands(): Promise<Map<string, Command>> {
  const out = new Map<string, Command>();
  const dir = join(REPO_ROOT, 'src', 'cli');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts') && f !== 'main.ts')) {
    const mod = (await import(join(dir, file))) as Record<string, unknown>;
    for (const v of Object.values(mod)) {
      const c = v as Partial<Command> | undefined;
      if (
        c &&
        typeof c === 'object' &&
        typeof c.name === 'string' &&
        typeof c.summary === 'string' &&
        typeof c.run === 'function'
      )
        out.set(c.name, c as Command);
    }
  }
  return out;
}

/** Splits a shell line into words (quotes kept together, not interpreted), comments dropped. */
function words(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote = '';
  for (const ch of line) {
    if (quote) {
      cur += ch;
      if (ch === quote) quote = '';
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      cur += ch;
    } else if (/\s/.test(ch)) {
      if (cur) out.push(cur);
      cur = '';
    } else if (ch === '#' && !cur) {
      break;
    } else cur += ch;
  }
  if (cur) out.push(cur);
  return out;
}

interface Invocation {
  file: string;
  command: string;
  flags: string[];
}

/** `lading <cmd> --flag …`, `npx … github:lading-dev/lading#v0 <cmd> …` or `$LADING <cmd> …` in shell lines. */
function invocations(file: string, lines: string[]): Invocation[] {
  const found: Invocation[] = [];
  for (const raw of lines.join('\n').replace(/\\\n/g, ' ').split('\n')) {
    const w = words(raw);
    for (let i = 0; i < w.length; i++) {
      if (!/^(lading|\$\{?LADING\}?|(github:)?lading-dev\/lading(#[\w.-]+)?)$/.test(w[i]!)) continue;
      const command = w[i + 1];
      if (!command) continue;
      const flags: string[] = [];
      for (const t of w.slice(i + 2)) {
        if (/^(\||\|\||&&|;|>|>>|2>|2>&1|<)$/.test(t) || /^[12]?>/.test(t)) break;
        if (t.startsWith('--')) flags.push(t.slice(2).split('=')[0]!);
      }
      found.push({ file, command, flags });
    }
  }
  return found;
}

/** The shell lines of a GitLab CI or Bitbucket Pipelines file: every script / before_script / after_script entry. */
function yamlScripts(doc: unknown): string[] {
  const out: string[] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      for (const [k, val] of Object.entries(v)) {
        if (/^(script|before_script|after_script)$/.test(k)) out.push(...strings(val));
        else walk(val);
      }
    }
  };
  walk(doc);
  return out;
}

/** The shell of a Jenkinsfile's `sh '…'` and `sh '''…'''` steps (single quotes: Groovy interpolates nothing). */
function jenkinsScripts(text: string): string[] {
  return [...text.matchAll(/\bsh\s+(?:'''([\s\S]*?)'''|'([^'\n]*)')/g)].map((m) => m[1] ?? m[2]!);
}

const files = exampleFiles();
const ciFiles = files.filter((f) => /(\.gitlab-ci\.yml|bitbucket-pipelines\.yml|Jenkinsfile)$/.test(f));

describe('the CLI commands', () => {
  it('all have --help, a summary, and a machine-readable --json', async () => {
    const commands = await cliCommands();
    assert.ok(commands.size >= 8, `found ${commands.size} commands`);
    for (const [name, cmd] of commands) {
      assert.ok(cmd.summary, `${name} has a summary`);
      assert.match(commandHelp(cmd), new RegExp(`^lading ${name}: `), `${name} --help`);
      const json = commandFlags(cmd.name).find((f) => f.name === 'json');
      assert.ok(json?.bool, `${name} has a boolean --json flag`);
    }
  });

  it('are all registered in src/cli/main.ts', async () => {
    const main = readFileSync(join(REPO_ROOT, 'src', 'cli', 'main.ts'), 'utf8');
    const list = /const COMMANDS[^=]*=\s*\[([\s\S]*?)\]/.exec(main)?.[1] ?? '';
    const registered = list
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const exported = new Set<string>();
    for (const file of readdirSync(join(REPO_ROOT, 'src', 'cli')).filter((f) => f.endsWith('.ts') && f !== 'main.ts')) {
      const mod = (await import(join(REPO_ROOT, 'src', 'cli', file))) as Record<string, unknown>;
      for (const [k, v] of Object.entries(mod))
        if (v && typeof v === 'object' && 'run' in v && 'flags' in v) exported.add(k);
    }
    for (const k of exported) assert.ok(registered.includes(k), `${k} is in COMMANDS`);
  });
});

describe('examples/', () => {
  it('has the examples the README lists', () => {
    for (const name of [
      'gcr-ssh',
      'ecr-ssh',
      's3-registryless',
      'gcs-registryless',
      'monorepo-chain',
      'gitlab-ci',
      'bitbucket',
      'jenkins',
    ]) {
      assert.ok(existsSync(join(REPO_ROOT, 'examples', name, 'README.md')), `examples/${name}/README.md`);
      assert.ok(
        readFileSync(join(REPO_ROOT, 'README.md'), 'utf8').includes(`examples/${name}`),
        `README links ${name}`,
      );
    }
  });

  it('has GitLab, Bitbucket and Jenkins pipelines', () => {
    for (const f of [
      'examples/gitlab-ci/.gitlab-ci.yml',
      'examples/bitbucket/bitbucket-pipelines.yml',
      'examples/jenkins/Jenkinsfile',
    ])
      assert.ok(ciFiles.includes(f), f);
  });

  for (const file of ciFiles) {
    it(`${file}: every lading command and flag it runs exists in the CLI`, async () => {
      const commands = await cliCommands();
      const text = readFileSync(join(REPO_ROOT, file), 'utf8');
      const lines = file.endsWith('Jenkinsfile') ? jenkinsScripts(text) : yamlScripts(parse(text, { merge: true }));
      assert.ok(lines.length > 0, 'scripts found');
      const calls = invocations(file, lines);
      assert.ok(calls.length >= 3, `lading runs found: ${calls.length}`);
      for (const call of calls) {
        const cmd = commands.get(call.command);
        assert.ok(cmd, `${call.command} is a lading command`);
        const flags = commandFlags(cmd.name);
        const known = new Set([
          'help',
          ...flags.map((f) => f.name),
          ...flags.filter((f) => f.bool).map((f) => `no-${f.name}`),
        ]);
        for (const flag of call.flags) assert.ok(known.has(flag), `lading ${call.command} --${flag} exists`);
      }
      const used = new Set(calls.map((c) => c.command));
      for (const c of ['build', 'push', 'manifest', 'deploy']) assert.ok(used.has(c), `runs lading ${c}`);
    });
  }

  it('Jenkinsfile runs shell only in single quotes (Groovy never interpolates a secret)', () => {
    const text = readFileSync(join(REPO_ROOT, 'examples', 'jenkins', 'Jenkinsfile'), 'utf8');
    assert.doesNotMatch(text, /\bsh\s+"/);
  });

  it('every compose file builds from contexts that exist, with a Dockerfile', () => {
    const composeFiles = files.filter((f) => /docker-compose[\w.-]*\.ya?ml$/.test(f));
    assert.ok(composeFiles.length >= 8);
    for (const f of composeFiles) {
      const doc = parse(readFileSync(join(REPO_ROOT, f), 'utf8')) as {
        services: Record<string, { image?: string; build?: string | { context: string; dockerfile?: string } }>;
      };
      for (const [name, svc] of Object.entries(doc.services)) {
        if (!svc.build) continue;
        assert.ok(svc.image, `${f}: ${name} has an image name to push`);
        const ctx = typeof svc.build === 'string' ? svc.build : svc.build.context;
        const dockerfile = (typeof svc.build === 'object' && svc.build.dockerfile) || 'Dockerfile';
        const dir = join(REPO_ROOT, dirname(f), ctx);
        assert.ok(existsSync(dir) && statSync(dir).isDirectory(), `${f}: ${name} context ${ctx}`);
        assert.ok(existsSync(join(dir, dockerfile)), `${f}: ${name} has ${ctx}/${dockerfile}`);
      }
    }
  });

  it('the compose files the example workflows and pipelines name exist in the example', () => {
    for (const f of files.filter((x) => /\/\.github\/workflows\//.test(x))) {
      const root = f.slice(0, f.indexOf('/.github/'));
      for (const job of Object.values(loadWorkflow(f).jobs)) {
        const withs = [
          job.with,
          ...(job.steps ?? []).filter((s) => ourAction(s.uses) !== undefined).map((s) => s.with),
        ];
        if (!ourWorkflow(job.uses)) withs.shift();
        for (const w of withs) {
          const cf = (w as Record<string, unknown> | undefined)?.['compose-files'];
          if (typeof cf === 'string') assert.ok(existsSync(join(REPO_ROOT, root, cf)), `${f}: ${cf}`);
        }
      }
    }
    for (const f of ciFiles) {
      for (const m of readFileSync(join(REPO_ROOT, f), 'utf8').matchAll(/--compose-files\s+(\S+)/g))
        assert.ok(existsSync(join(REPO_ROOT, dirname(f), m[1]!)), `${f}: ${m[1]}`);
    }
  });
});
