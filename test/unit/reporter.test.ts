import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deferUntilGroup, maskRegistered, stderrReporter } from '../../src/io/reporter.ts';

describe('reporters', () => {
  it('with timestamps, every line (each line of a multi-line message too) starts with the UTC time', async () => {
    let text = '';
    const r = stderrReporter(false, {
      timestamps: true,
      now: () => new Date('2026-11-29T17:05:09.123Z'),
      write: (t) => (text += t),
    });
    r.info('polling s3://b/m.json every 60s');
    r.warning('poll: first\nsecond');
    await r.group('deploy x', async () => r.info('inside'));
    assert.equal(
      text,
      '2026-11-29T17:05:09Z polling s3://b/m.json every 60s\n' +
        '2026-11-29T17:05:09Z warning: poll: first\n2026-11-29T17:05:09Z second\n' +
        '2026-11-29T17:05:09Z == deploy x\n2026-11-29T17:05:09Z inside\n',
    );
  });

  it('masks a secret that contains a shorter one whole, whichever was registered first', () => {
    const lines: string[] = [];
    const r = stderrReporter(false, { write: (t) => lines.push(t) });
    r.secret('tok-1');
    r.secret('tok-1-rest-of-the-value');
    r.info('a tok-1-rest-of-the-value b tok-1 c');
    assert.deepEqual(lines, ['a *** b *** c\n']);
    assert.equal(maskRegistered('x tok-1-rest-of-the-value'), 'x ***');
  });

  it('without timestamps, lines are written as they are', () => {
    let text = '';
    const r = stderrReporter(false, { write: (t) => (text += t) });
    r.info('a\nb');
    assert.equal(text, 'a\nb\n');
  });

  it('lines noted before the first group are printed inside it, after its header; warnings are not held', async () => {
    let text = '';
    const base = stderrReporter(false, { write: (t) => (text += t) });
    const r = deferUntilGroup(base);
    r.info('registry 127.0.0.1:5000: no username/password given, using anonymous access');
    r.warning('a warning');
    await r.group('deploy r1 → host', async () => r.info('[host] compose v2'));
    r.info('after');
    assert.equal(
      text,
      'warning: a warning\n== deploy r1 → host\n' +
        'registry 127.0.0.1:5000: no username/password given, using anonymous access\n[host] compose v2\nafter\n',
    );
  });

  it('a stage that fails before any group still prints what it held (flush)', () => {
    let text = '';
    const r = deferUntilGroup(stderrReporter(false, { write: (t) => (text += t) }));
    r.info('held');
    assert.equal(text, '');
    r.flush();
    assert.equal(text, 'held\n');
  });
});
