import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { type ActionRun, NODE24, REPO_ROOT, runActionBundle, runActionBundleAsync } from './bundles.ts';

interface ActionYaml {
  inputs?: Record<string, { default?: string }>;
  outputs?: Record<string, { description?: string; value?: string }>;
  runs: { using: string; main?: string };
}

interface JsActionOpts {
  inputs?: Record<string, string>;
  env?: Record<string, string>;
  /** What `${{ github.token }}` in an input default evaluates to (the runner's GITHUB_TOKEN). */
  githubToken?: string;
}

/**
 * Runs a JavaScript action.yml the way the runner does: `runs.using` must be node24 and the process is the Node 24
 * binary running `runs.main`; every declared input is handed over as INPUT_<NAME> (given value, else its default,
 * `${{ github.token }}` evaluated), an undeclared input is refused, and the outputs are the ones the action.yml
 * declares (an output the action sets but does not declare fails the run).
 */
function prepare(actionDir: string, opts: JsActionOpts) {
  const yml = parse(readFileSync(join(REPO_ROOT, actionDir, 'action.yml'), 'utf8')) as ActionYaml;
  assert.equal(yml.runs.using, 'node24', `${actionDir}/action.yml runs on node24`);
  assert.ok(yml.runs.main, 'runs.main');
  const inputs: Record<string, string> = {};
  for (const [k, v] of Object.entries(yml.inputs ?? {})) {
    const def = (v.default ?? '').replace(/\$\{\{\s*github\.token\s*\}\}/g, opts.githubToken ?? '');
    assert.doesNotMatch(def, /\$\{\{/, `input ${k}: only \${{ github.token }} is evaluated in defaults`);
    inputs[k] = opts.inputs?.[k] ?? def;
  }
  for (const k of Object.keys(opts.inputs ?? {}))
    assert.ok(k in inputs, `input '${k}' is declared in ${actionDir}/action.yml`);
  const declared = new Set(Object.keys(yml.outputs ?? {}));
  const check = (run: ActionRun): ActionRun => {
    for (const k of Object.keys(run.outputs)) assert.ok(declared.has(k), `output '${k}' is declared in action.yml`);
    return run;
  };
  return {
    name: actionDir.replace(/\W/g, '-') || 'umbrella',
    opts: { inputs, env: opts.env ?? {}, node: NODE24, main: resolve(REPO_ROOT, actionDir, yml.runs.main) },
    check,
  };
}

export function runJsAction(actionDir: string, opts: JsActionOpts): ActionRun {
  const p = prepare(actionDir, opts);
  return p.check(runActionBundle(p.name, p.opts));
}

export async function runJsActionAsync(actionDir: string, opts: JsActionOpts): Promise<ActionRun> {
  const p = prepare(actionDir, opts);
  return p.check(await runActionBundleAsync(p.name, p.opts));
}
