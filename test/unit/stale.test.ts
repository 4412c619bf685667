import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BASE_DIGEST_LABEL,
  BASE_NAME_LABEL,
  baseImageLabels,
  decideStale,
  newestTimestampTag,
  parseTimestampTag,
  recordedBases,
  type StaleImageInput,
} from '../../src/lib/stale.ts';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const at = (iso: string) => new Date(iso);

describe('timestamp tags', () => {
  const cases: Array<[string, string | undefined]> = [
    ['20180923T082316Z', '2018-09-23T08:23:16.000Z'],
    ['20180904T231250Z', '2018-09-04T23:12:50.000Z'],
    ['20181332T000000Z', undefined], // month 13
    ['20180230T000000Z', undefined], // 30 February
    ['20180923T246000Z', undefined],
    ['2018-09-23T08:23:16Z', undefined],
    ['latest', undefined],
    ['main-1a2b3c4', undefined],
  ];
  for (const [tag, iso] of cases) {
    it(`${tag} → ${iso ?? 'not a timestamp tag'}`, () => {
      assert.equal(parseTimestampTag(tag)?.toISOString(), iso);
    });
  }

  it('the newest is the greatest timestamp tag; other tags are ignored', () => {
    assert.equal(
      newestTimestampTag(['latest', '20180904T231250Z', 'main-abc', '20180923T082316Z', '20180101T000000Z']),
      '20180923T082316Z',
    );
    assert.equal(newestTimestampTag(['latest', 'stage']), undefined);
    assert.equal(newestTimestampTag([]), undefined);
  });

  it('base labels round-trip, one or several bases', () => {
    const labels = baseImageLabels([
      { name: 'debian:12', digest: D1 },
      { name: 'golang:1.22', digest: D2 },
    ]);
    assert.equal(labels[BASE_NAME_LABEL], 'debian:12,golang:1.22');
    assert.deepEqual(recordedBases(labels), { 'debian:12': D1, 'golang:1.22': D2 });
    assert.deepEqual(recordedBases({ [BASE_DIGEST_LABEL]: D1 }), {});
    assert.deepEqual(recordedBases(undefined), {});
    assert.deepEqual(baseImageLabels([]), {});
  });
});

const img = (over: Partial<StaleImageInput> & { id: string }): StaleImageInput => ({
  name: `r.example/${over.id}`,
  dependsOn: [],
  tags: ['latest', '20180904T231250Z'],
  commitTime: at('2018-09-01T00:00:00Z'),
  bases: [],
  ...over,
});

describe('stale decisions', () => {
  const table: Array<[string, StaleImageInput[], Array<[string, boolean, RegExp[]]>]> = [
    ['code older than the newest tag: up to date', [img({ id: 'app' })], [['app', false, []]]],
    [
      'code newer than the newest tag: rebuild (the seed rule)',
      [img({ id: 'app', commitTime: at('2018-09-05T10:00:00Z') })],
      [['app', true, [/code changed at 2018-09-05T10:00:00Z, after the newest tag 20180904T231250Z/]]],
    ],
    [
      'a commit inside the tag second counts as built',
      [img({ id: 'app', commitTime: at('2018-09-04T23:12:50.900Z') })],
      [['app', false, []]],
    ],
    ['no timestamp tag yet: rebuild', [img({ id: 'app', tags: ['latest'] })], [['app', true, [/no timestamp tag/]]]],
    [
      'base digest changed: rebuild',
      [img({ id: 'app', bases: [{ name: 'debian:12', recorded: D1, current: D2 }] })],
      [['app', true, [/base debian:12 changed: built on sha256:111111111111, now sha256:222222222222/]]],
    ],
    [
      'base digest the same: up to date',
      [img({ id: 'app', bases: [{ name: 'debian:12', recorded: D1, current: D1 }] })],
      [['app', false, []]],
    ],
    [
      'chain base → dev → prod, base code changed: all three rebuild, in order',
      [
        img({ id: 'base', commitTime: at('2018-09-10T00:00:00Z') }),
        img({ id: 'dev', dependsOn: ['base'] }),
        img({ id: 'prod', dependsOn: ['dev'] }),
      ],
      [
        ['base', true, [/code changed/]],
        ['dev', true, [/upstream image 'base' is being rebuilt/]],
        ['prod', true, [/upstream image 'dev' is being rebuilt/]],
      ],
    ],
    [
      'chain, only prod code changed: only prod rebuilds',
      [
        img({ id: 'base' }),
        img({ id: 'dev', dependsOn: ['base'] }),
        img({ id: 'prod', dependsOn: ['dev'], commitTime: at('2018-09-10T00:00:00Z') }),
      ],
      [
        ['base', false, []],
        ['dev', false, []],
        ['prod', true, [/code changed/]],
      ],
    ],
    [
      'chain, base image of the base changed: the whole chain rebuilds; a sibling does not',
      [
        img({ id: 'base', bases: [{ name: 'alpine:3', recorded: D1, current: D2 }] }),
        img({ id: 'dev', dependsOn: ['base'] }),
        img({ id: 'other' }),
      ],
      [
        ['base', true, [/base alpine:3 changed/]],
        ['dev', true, [/upstream image 'base'/]],
        ['other', false, []],
      ],
    ],
    [
      'several reasons are all given',
      [
        img({ id: 'base', commitTime: at('2018-09-10T00:00:00Z') }),
        img({
          id: 'dev',
          dependsOn: ['base'],
          commitTime: at('2018-09-10T00:00:00Z'),
          bases: [{ name: 'x:1', recorded: D1, current: D2 }],
        }),
      ],
      [
        ['base', true, [/code changed/]],
        ['dev', true, [/code changed/, /base x:1 changed/, /upstream image 'base'/]],
      ],
    ],
  ];
  for (const [name, input, expected] of table) {
    it(name, () => {
      const out = decideStale(input);
      assert.deepEqual(
        out.map((d) => [d.id, d.stale]),
        expected.map(([id, stale]) => [id, stale]),
      );
      expected.forEach(([, , res], i) => {
        assert.equal(out[i]!.reasons.length, res.length, out[i]!.reasons.join('; '));
        res.forEach((re, j) => assert.match(out[i]!.reasons[j]!, re));
      });
    });
  }

  it('notes, without deciding, what it could not check', () => {
    const [d] = decideStale([
      img({ id: 'app', commitTime: undefined, bases: [{ name: 'debian:12' }, { name: 'x:1', recorded: D1 }] }),
    ]);
    assert.equal(d!.stale, false);
    assert.equal(d!.notes.length, 3);
    assert.match(d!.notes.join('\n'), /no commit time/);
    assert.match(d!.notes.join('\n'), /no recorded digest for base debian:12/);
    assert.match(d!.notes.join('\n'), /base x:1 could not be resolved/);
  });
});
