// Generates the action reference tables of README.md (and any other markdown file given) from the action.yml
// files and the reusable workflows, between markers:
//
//   <!-- lading:inputs actions/deploy -->  …  <!-- /lading:inputs -->
//   <!-- lading:outputs . -->              …  <!-- /lading:outputs -->      (. is the umbrella action.yml)
//   <!-- lading:inputs .github/workflows/deploy.yml -->  …                    (workflow_call inputs)
//   <!-- lading:secrets .github/workflows/deploy.yml --> …  <!-- /lading:secrets -->
//
// `node scripts/docs.mjs` rewrites the blocks; `node scripts/docs.mjs --check` fails (exit 1) when a block differs
// from what the YAML says, so the tables cannot drift. The result is formatted with the repository's prettier config.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import * as prettier from 'prettier';
import { parse } from 'yaml';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const check = args.includes('--check');
const files = args.filter((a) => !a.startsWith('--'));
if (files.length === 0) files.push('README.md');

const KINDS = ['inputs', 'outputs', 'secrets'];
const BLOCK = /(<!-- lading:(inputs|outputs|secrets) ([^\s]+) -->)\n[\s\S]*?(<!-- \/lading:\2 -->)/g;

/** Markdown table cell: one line, pipes escaped. */
const cell = (v) =>
  String(v ?? '')
    .replace(/\s*\n\s*/g, ' ')
    .replace(/\|/g, '\\|')
    .replace(/</g, '&lt;')
    .replace(/\*/g, '\\*')
    .trim();
const code = (v) => (v === '' || v === undefined ? '' : `\`${String(v).replace(/`/g, "'")}\``);

/** The YAML a marker names: an action directory ('.' = the umbrella) or a workflow file. */
function load(target) {
  const path = target.endsWith('.yml') || target.endsWith('.yaml') ? target : join(target, 'action.yml');
  const file = join(root, path);
  if (!existsSync(file)) throw new Error(`no ${path} for the marker '${target}'`);
  const doc = parse(readFileSync(file, 'utf8'));
  if (doc.runs) return { kind: 'action', path, doc };
  const call = doc.on?.workflow_call;
  if (!call) throw new Error(`${path} is neither an action nor a reusable (workflow_call) workflow`);
  return { kind: 'workflow', path, doc: call };
}

function table(kind, target) {
  const { path, doc } = load(target);
  const entries = Object.entries(doc[kind] ?? {});
  if (entries.length === 0) throw new Error(`${path} has no ${kind} (marker lading:${kind} ${target})`);
  if (kind === 'inputs') {
    const rows = entries.map(([name, i]) => {
      const dflt = i.required === true ? '**required**' : code(i.default === undefined ? '' : String(i.default));
      return `| \`${name}\` | ${dflt} | ${cell(i.description)} |`;
    });
    return ['| input | default | description |', '| --- | --- | --- |', ...rows].join('\n');
  }
  if (kind === 'secrets') {
    const rows = entries.map(([name, s]) => `| \`${name}\` | ${s.required ? 'yes' : 'no'} | ${cell(s.description)} |`);
    return ['| secret | required | description |', '| --- | --- | --- |', ...rows].join('\n');
  }
  const rows = entries.map(([name, o]) => `| \`${name}\` | ${cell(o.description)} |`);
  return ['| output | description |', '| --- | --- |', ...rows].join('\n');
}

/** The file with every block regenerated and formatted; throws on a marker naming nothing. */
async function render(file) {
  const text = readFileSync(file, 'utf8');
  let blocks = 0;
  const replaced = text.replace(BLOCK, (_, open, kind, target, close) => {
    if (!KINDS.includes(kind)) throw new Error(`unknown block kind ${kind}`);
    blocks++;
    return `${open}\n\n${table(kind, target)}\n\n${close}`;
  });
  const options = { ...(await prettier.resolveConfig(file)), filepath: file };
  return { text, next: await prettier.format(replaced, options), blocks };
}

let stale = 0;
for (const f of files) {
  const file = join(root, f);
  const { text, next, blocks } = await render(file);
  const name = relative(root, file);
  if (next === text) {
    console.log(`docs: ${name} is up to date (${blocks} tables)`);
  } else if (check) {
    stale++;
    console.error(`docs: ${name} differs from the action.yml files: run 'npm run docs' and commit the result`);
  } else {
    writeFileSync(file, next);
    console.log(`docs: ${name} rewritten (${blocks} tables)`);
  }
}
process.exitCode = stale ? 1 : 0;
