import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BASE_DIGEST_LABEL, BASE_NAME_LABEL } from '../../src/lib/stale.ts';
import { stderrReporter } from '../../src/io/reporter.ts';
import { parseNewestSettings, parseStaleSettings } from '../../src/settings/stale.ts';
import { runNewestStage, runStaleStage } from '../../src/stages/stale.ts';
import { busyboxContext, docker, testEnv, unique } from '../helpers/testenv.ts';

describe('lading stale and newest against the local registry', () => {
  const env = testEnv();
  const ns = `${env.registry.host}/${unique('stale')}`;
  const names = { base: `${ns}/base`, app: `${ns}/app`, tool: `${ns}/tool`, upstream: `${ns}/upstream` };
  let repo = '';
  let ctx = '';
  const local: string[] = [];

  const git = (args: string[], date: string) =>
    execFileSync('git', args, {
      cwd: repo,
      env: {
        ...process.env,
        GIT_AUTHOR_DATE: date,
        GIT_COMMITTER_DATE: date,
        GIT_AUTHOR_NAME: 't',
        GIT_AUTHOR_EMAIL: 't@e',
        GIT_COMMITTER_NAME: 't',
        GIT_COMMITTER_EMAIL: 't@e',
      },
      stdio: 'pipe',
    });
  /** Builds the busybox context with extra Dockerfile lines and pushes it as name:tag; returns the digest. */
  const push = (name: string, tag: string, extra: string[] = [], file = 'a') => {
    const dir = busyboxContext(mkdtempSync(join(tmpdir(), 'lading-stale-img-')), { files: { [file]: file }, extra });
    docker(['build', '-q', '-t', `${name}:${tag}`, dir]);
    docker(['push', '-q', `${name}:${tag}`]);
    local.push(`${name}:${tag}`);
    rmSync(dir, { recursive: true, force: true });
    return docker(['image', 'inspect', '--format', '{{index .RepoDigests 0}}', `${name}:${tag}`]).split('@')[1]!;
  };
  const read = (inputs: Record<string, string>) => (n: string) => inputs[n] || undefined;
  const images = () =>
    [
      `- { name: ${names.base}, context: base }`,
      `- { name: ${names.app}, context: app }`,
      `- { name: ${names.tool}, context: tool }`,
    ].join('\n');
  const stale = () =>
    runStaleStage({
      ...parseStaleSettings(read({ images: images() })),
      env: {},
      cwd: repo,
      reporter: stderrReporter(true),
    });

  before(() => {
    repo = mkdtempSync(join(tmpdir(), 'lading-stale-repo-'));
    ctx = repo;
    for (const d of ['base', 'app', 'tool']) mkdirSync(join(ctx, d));
    writeFileSync(join(ctx, 'base', 'Dockerfile'), 'FROM scratch\nCOPY . /\n');
    writeFileSync(join(ctx, 'app', 'Dockerfile'), `FROM ${names.base}:latest\nCOPY . /app\n`);
    writeFileSync(join(ctx, 'tool', 'Dockerfile'), `ARG BASE=${names.upstream}:1\nFROM $BASE\nCOPY . /tool\n`);
    execFileSync('git', ['init', '-q', '-b', 'main'], { cwd: repo });
    git(['add', '.'], '2026-01-01T00:00:00Z');
    git(['commit', '-q', '-m', 'one'], '2026-01-01T00:00:00Z');
    const up = push(names.upstream, '1', [], 'up-1');
    push(names.base, '20260102T000000Z');
    push(names.base, '20260101T120000Z');
    push(names.app, '20260102T000000Z');
    push(names.tool, '20260102T000000Z', [`LABEL ${BASE_NAME_LABEL}=${names.upstream}:1 ${BASE_DIGEST_LABEL}=${up}`]);
  });
  after(() => {
    try {
      docker(['rmi', '--no-prune', '-f', ...local]);
    } finally {
      rmSync(repo, { recursive: true, force: true });
    }
  });

  it('everything built after the last commit, bases unchanged: nothing to rebuild', async () => {
    const res = await stale();
    assert.deepEqual(res.rebuild, []);
    assert.deepEqual(
      res.images.map((d) => [d.id, d.newestTag]),
      [
        ['base', '20260102T000000Z'],
        ['app', '20260102T000000Z'],
        ['tool', '20260102T000000Z'],
      ],
    );
    assert.equal(res.images[2]!.notes.length, 0, res.images[2]!.notes.join('; '));
  });

  it('a commit to base after its newest tag rebuilds base and then app (chain order), not tool', async () => {
    writeFileSync(join(ctx, 'base', 'motd'), 'hello\n');
    git(['add', '.'], '2026-01-03T00:00:00Z');
    git(['commit', '-q', '-m', 'two'], '2026-01-03T00:00:00Z');
    const res = await stale();
    assert.deepEqual(res.rebuild, ['base', 'app']);
    assert.match(
      res.images[0]!.reasons[0]!,
      /code changed at 2026-01-03T00:00:00Z, after the newest tag 20260102T000000Z/,
    );
    assert.match(res.images[1]!.reasons[0]!, /upstream image 'base' is being rebuilt/);
  });

  it('a new push of the base image tool is built FROM rebuilds tool, saying which base changed', async () => {
    push(names.upstream, '1', [], 'up-2');
    const res = await stale();
    assert.deepEqual(res.rebuild, ['base', 'app', 'tool']);
    assert.match(res.images[2]!.reasons.join('\n'), new RegExp(`base ${names.upstream}:1 changed: built on sha256:`));
  });

  it('newest resolves the newest timestamp tag and its digest; an image without one is a clear error', async () => {
    const res = await runNewestStage({
      ...parseNewestSettings(read({ image: names.base })),
      reporter: stderrReporter(true),
    });
    assert.equal(res.ref, `${names.base}:20260102T000000Z`);
    assert.match(res.digest, /^sha256:[0-9a-f]{64}$/);
    await assert.rejects(
      runNewestStage({ ...parseNewestSettings(read({ image: names.upstream })), reporter: stderrReporter(true) }),
      /has no timestamp tag/,
    );
  });
});
