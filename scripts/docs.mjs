// Rewrites the `inputs:` block of every action.yml from the table of inputs (src/lib/input-table.ts), then
// generates the action reference tables of README.md (and any other markdown file given) from the action.yml
// files and the reusable workflows, between markers:
//
//   <!-- lading:inputs actions/deploy -->  …  <!-- /lading:inputs -->
//   <!-- lading:outputs . -->              …  <!-- /lading:outputs -->      (. is the umbrella action.yml)
//   <!-- lading:inputs .github/workflows/deploy.yml -->  …                    (workflow_call inputs)
//   <!-- lading:secrets .github/workflows/deploy.yml --> …  <!-- /lading:secrets -->
//
// `node scripts/docs.mjs` rewrites the blocks; `node scripts/docs.mjs --check` fails (exit 1) when a block differs
// from what the YAML says (or an action.yml's inputs from the table), so the tables cannot drift. The result is formatted with the repository's prettier config.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import * as prettier from 'prettier';
import { tsImport } from 'tsx/esm/api';
import { Document, parse } from 'yaml';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const check = args.includes('--check');
const files = args.filter((a) => !a.startsWith('--'));
if (files.length === 0) files.push('README.md');

const TABLE = await tsImport('../src/lib/input-table.ts', import.meta.url);

/** The action.yml of an action of the table ('lading' is the umbrella at the root). */
const actionFile = (action) => join(root, action === 'lading' ? 'action.yml' : join('actions', action, 'action.yml'));

/** The inputs: block the table gives an action, as YAML text (two-space indented, no trailing newline). */
function inputsBlock(action) {
  const inputs = {};
  for (const id of TABLE.actionInputs(action)) {
    const row = TABLE.INPUTS[id];
    const required = (row.required ?? []).includes(action);
    inputs[TABLE.inputName(id)] = {
      description: TABLE.actionHelp(id, action),
      required,
      ...(required ? {} : { default: TABLE.defaultText(id) }),
    };
  }
  const doc = new Document({ inputs });
  // Long descriptions as folded blocks (>-), the way they were written by hand.
  for (const pair of doc.get('inputs').items) {
    const d = pair.value.get('description', true);
    if (d.value.length > 103) d.type = 'BLOCK_FOLDED'; // '    description: ' + text > 120 columns
  }
  return doc.toString({ lineWidth: 118, minContentWidth: 40 }).trimEnd();
}

/** The action.yml text with its inputs: block (up to the next top-level key) replaced by the table's. */
async function renderAction(action) {
  const file = actionFile(action);
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n');
  const start = lines.findIndex((l) => /^inputs:/.test(l));
  if (start < 0) throw new Error(`${relative(root, file)} has no inputs: block`);
  let end = start + 1;
  while (end < lines.length && !/^[A-Za-z]/.test(lines[end])) end++;
  const replaced = [...lines.slice(0, start), inputsBlock(action), ...lines.slice(end)].join('\n');
  const options = { ...(await prettier.resolveConfig(file)), filepath: file };
  return { file, text, next: await prettier.format(replaced, options) };
}

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
for (const action of TABLE.ACTIONS) {
  const { file, text, next } = await renderAction(action);
  const name = relative(root, file);
  if (next === text) continue;
  if (check) {
    stale++;
    console.error(`docs: ${name} inputs differ from src/lib/input-table.ts: run 'npm run docs' and commit the result`);
  } else {
    writeFileSync(file, next);
    console.log(`docs: ${name} inputs rewritten from the table`);
  }
}
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
