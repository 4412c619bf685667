// ESLint rule `layers/downward`: a module under src/ imports only from its own layer or a lower one.
// The layers and their exceptions are given in eslint.config.js; test/unit/layers.test.ts lints upward imports
// with the real config and expects them to fail.
import { dirname, relative, resolve, sep } from 'node:path';

const root = resolve(dirname(new URL(import.meta.url).pathname), '..');

/** `src/<layer>/…` → layer name; undefined outside src/ (tests, scripts, schema/*.json, package.json). */
function layerOf(file) {
  const rel = relative(root, file).split(sep);
  return rel[0] === 'src' && rel.length > 2 ? rel[1] : undefined;
}

const rel = (file) => relative(root, file).split(sep).join('/');

/** @type {import('eslint').Rule.RuleModule} */
const downward = {
  meta: {
    type: 'problem',
    docs: { description: 'each src/ layer imports only downward (see ARCHITECTURE.md)' },
    schema: [
      {
        type: 'object',
        properties: {
          // layer → rank; a module may import a layer of lower rank, or its own layer. Equal ranks of different
          // names (actions, cli) may not import each other.
          ranks: { type: 'object', additionalProperties: { type: 'integer' } },
          // Known upward imports, each { from, to, why }: allowed, and reported when they no longer occur.
          exceptions: {
            type: 'array',
            items: {
              type: 'object',
              properties: { from: { type: 'string' }, to: { type: 'string' }, why: { type: 'string' } },
              required: ['from', 'to', 'why'],
            },
          },
        },
        required: ['ranks'],
      },
    ],
  },
  create(context) {
    const { ranks, exceptions = [] } = context.options[0] ?? {};
    const file = context.filename;
    const from = layerOf(file);
    if (from === undefined) return {};
    if (!(from in ranks)) {
      return {
        Program(node) {
          context.report({
            node,
            message: `src/${from}/ is not a known layer: give it a rank in eslint.config.js (layers) and ARCHITECTURE.md`,
          });
        },
      };
    }
    const mine = exceptions.filter((e) => e.from === rel(file));
    const used = new Set();
    function check(node, source) {
      if (typeof source !== 'string' || !source.startsWith('.')) return;
      const target = resolve(dirname(file), source);
      const to = layerOf(target);
      if (to === undefined || to === from) return;
      const upward = !(to in ranks) || ranks[to] >= ranks[from];
      if (!upward) return;
      const ex = mine.find((e) => e.to === rel(target));
      if (ex) {
        used.add(ex);
        return;
      }
      context.report({
        node,
        message:
          `src/${from}/ may not import src/${to}/ (${rel(target)}): layers import only downward ` +
          `(${Object.entries(ranks)
            .sort((a, b) => a[1] - b[1])
            .map(([n]) => n)
            .join(' < ')}). Move the shared type or helper down to a lower layer, or pass it in.`,
      });
    }
    return {
      ImportDeclaration: (node) => check(node, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(node, node.source.value),
      ExportAllDeclaration: (node) => check(node, node.source.value),
      ImportExpression: (node) => node.source.type === 'Literal' && check(node, node.source.value),
      // `import('../x.ts').T` in a type (typescript-eslint ≥ 8.3x names it `source`, older ones `argument`)
      TSImportType: (node) => check(node, node.source?.value ?? node.argument?.literal?.value),
      'Program:exit'(node) {
        for (const ex of mine) {
          if (!used.has(ex)) {
            context.report({
              node,
              message: `the layer exception ${ex.from} → ${ex.to} no longer occurs: remove it from eslint.config.js`,
            });
          }
        }
      },
    };
  },
};

export default { rules: { downward } };
