import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { unsupportedNode } from '../../src/lib/runtime.ts';

describe('the Node the CLI runs on', () => {
  const cases: Array<[string, boolean]> = [
    ['v18.19.0', false],
    ['v20.20.2', false],
    ['v21.7.3', false],
    ['v22.0.0', true],
    ['v24.21.0', true],
    ['v26.1.0', true],
  ];
  for (const [version, ok] of cases) {
    it(`${version}: ${ok ? 'runs' : 'refused, saying what to install'}`, () => {
      const why = unsupportedNode(version);
      if (ok) assert.equal(why, undefined);
      else assert.match(why ?? '', new RegExp(`needs Node 22 or newer; this is Node ${version}.*node@24`));
    });
  }
});
