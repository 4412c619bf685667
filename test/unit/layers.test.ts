import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, it } from 'node:test';
import { ESLint } from 'eslint';
import { REPO_ROOT } from '../helpers/bundles.ts';

// The layers and exceptions eslint.config.js exports (a JS file: loaded by URL, typed here).
const config = (await import(pathToFileURL(join(REPO_ROOT, 'eslint.config.js')).href)) as {
  LAYER_RANKS: Record<string, number>;
  LAYER_EXCEPTIONS: { from: string; to: string; why: string }[];
};
const { LAYER_RANKS, LAYER_EXCEPTIONS } = config;

// The layer rule as `npm run lint` runs it: eslint.config.js, linting source text as if it were a file of src/.
const eslint = new ESLint({ cwd: REPO_ROOT });

async function layerErrors(file: string, code: string): Promise<string[]> {
  const [res] = await eslint.lintText(code, { filePath: join(REPO_ROOT, file) });
  return res!.messages.filter((m) => m.ruleId === 'layers/downward').map((m) => m.message);
}

type Layer = 'lib' | 'io' | 'stages' | 'settings' | 'actions' | 'cli';
const layers = Object.keys(LAYER_RANKS) as Layer[];
/** A module of each layer to import from (any path works: the rule resolves the path, it does not read the file). */
const target: Record<Layer, string> = {
  lib: 'lib/errors.ts',
  io: 'io/exec.ts',
  stages: 'stages/tags.ts',
  settings: 'settings/common.ts',
  actions: 'actions/run.ts',
  cli: 'cli/args.ts',
};

describe('layer rule (eslint.config.js, layers/downward)', () => {
  for (const from of layers) {
    for (const to of layers) {
      if (from === to) continue;
      const allowed = LAYER_RANKS[to]! < LAYER_RANKS[from]!;
      it(`src/${from} ${allowed ? 'may' : 'may not'} import src/${to}`, async () => {
        const errors = await layerErrors(
          `src/${from}/new-module.ts`,
          `import { x } from '../${target[to]}';\nexport const y = x;\n`,
        );
        assert.equal(errors.length, allowed ? 0 : 1, errors.join('\n'));
        if (!allowed) assert.match(errors[0]!, new RegExp(`src/${from}/ may not import src/${to}/`));
      });
    }
  }

  it('counts type-only imports, re-exports and dynamic imports, from nested folders too', async () => {
    const errors = await layerErrors(
      'src/io/deep/new-module.ts',
      [
        "import type { T } from '../../stages/host/types.ts';",
        "export { u } from '../../settings/deploy.ts';",
        "export * from '../../cli/args.ts';",
        "export const load = () => import('../../actions/run.ts');",
        'export type V = T;',
      ].join('\n'),
    );
    assert.equal(errors.length, 4, errors.join('\n'));
  });

  it('counts an import() in a type too', async () => {
    const errors = await layerErrors(
      'src/lib/new-module.ts',
      "export type V = import('../stages/host/types.ts').HostSettings;\n",
    );
    assert.equal(errors.length, 1, errors.join('\n'));
    assert.match(errors[0]!, /src\/lib\/ may not import src\/stages\//);
  });

  it('lets a module import its own layer, lib, packages and files outside src/', async () => {
    const errors = await layerErrors(
      'src/stages/host/new-module.ts',
      [
        "import { a } from './types.ts';",
        "import { b } from '../deploy.ts';",
        "import { c } from '../../lib/errors.ts';",
        "import { d } from 'yaml';",
        "import e from '../../../package.json' with { type: 'json' };",
        'export const all = [a, b, c, d, e];',
      ].join('\n'),
    );
    assert.deepEqual(errors, []);
  });

  it('refuses a folder of src/ that is not a known layer', async () => {
    const errors = await layerErrors('src/helpers/new-module.ts', 'export const x = 1;\n');
    assert.match(errors.join('\n'), /src\/helpers\/ is not a known layer/);
  });

  it('reports a listed exception once its upward import is gone, so the list only shrinks', async () => {
    // the project's list may be empty: the rule is run here with one exception whose import is gone
    const ex = { from: 'src/stages/load.ts', to: 'src/settings/common.ts', why: 'a stage that read its own inputs' };
    const withException = new ESLint({
      cwd: REPO_ROOT,
      overrideConfig: {
        rules: { 'layers/downward': ['error', { ranks: LAYER_RANKS, exceptions: [...LAYER_EXCEPTIONS, ex] }] },
      },
    });
    const [res] = await withException.lintText('export const nothingUpward = 1;\n', {
      filePath: join(REPO_ROOT, ex.from),
    });
    const errors = res!.messages.filter((m) => m.ruleId === 'layers/downward').map((m) => m.message);
    assert.match(errors.join('\n'), /no longer occurs: remove it from eslint\.config\.js/);
  });

  it('lists exceptions only for files that exist (a moved or deleted file takes its entries with it)', () => {
    for (const ex of LAYER_EXCEPTIONS) {
      assert.ok(existsSync(join(REPO_ROOT, ex.from)), `${ex.from}: listed in LAYER_EXCEPTIONS but gone`);
      assert.ok(existsSync(join(REPO_ROOT, ex.to)), `${ex.to}: listed in LAYER_EXCEPTIONS but gone`);
    }
  });
});
