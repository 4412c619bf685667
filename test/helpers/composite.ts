import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT, runActionBundle } from './bundles.ts';

interface ActionYaml {
  inputs?: Record<string, { default?: string }>;
  outputs?: Record<string, { value?: string }>;
  runs: { using: string; steps?: Array<{ id?: string; run?: string; env?: Record<string, string>; if?: string }> };
}

/**
 * Runs a composite action.yml the way the runner does, for the steps that run our bundles:
 * `${{ inputs.x }}` and `${{ steps.id.outputs.y }}` in env are resolved, `node "$GITHUB_ACTION_PATH/dist/…"`
 * runs the bundle, and the action's outputs are mapped from step outputs. Anything else in the YAML is refused,
 * so the composite cannot drift from what this helper proves.
 */
export function runComposite(
  actionDir: string,
  opts: { inputs?: Record<string, string>; env?: Record<string, string> },
): { outputs: Record<string, string>; steps: Record<string, ReturnType<typeof runActionBundle>> } {
  const yml = parse(readFileSync(join(REPO_ROOT, actionDir, 'action.yml'), 'utf8')) as ActionYaml;
  assert.equal(yml.runs.using, 'composite');
  const inputs: Record<string, string> = {};
  for (const [k, v] of Object.entries(yml.inputs ?? {})) inputs[k] = opts.inputs?.[k] ?? v.default ?? '';
  for (const k of Object.keys(opts.inputs ?? {}))
    assert.ok(k in inputs, `input '${k}' is declared in ${actionDir}/action.yml`);
  const steps: Record<string, ReturnType<typeof runActionBundle>> = {};
  const term = (e: string): string => {
    const input = /^inputs\.([\w-]+)$/.exec(e);
    if (input) return inputs[input[1]!] ?? '';
    const out = /^steps\.([\w-]+)\.outputs\.([\w-]+)$/.exec(e);
    if (out) return steps[out[1]!]?.outputs[out[2]!] ?? '';
    throw new Error(`unsupported expression in ${actionDir}/action.yml: ${e}`);
  };
  // `a || b` is the first non-empty term, as on the runner.
  const value = (e: string) =>
    e
      .split(/\s*\|\|\s*/)
      .map(term)
      .find((v) => v !== '') ?? '';
  const expr = (s: string) => s.replace(/\$\{\{\s*([^}]+?)\s*\}\}/g, (_, e: string) => value(e));
  // Step conditions: only `inputs.x == ''` and `inputs.x != ''` are used (and supported).
  const condition = (c: string | undefined): boolean => {
    if (c === undefined) return true;
    const m = /^inputs\.([\w-]+)\s*(==|!=)\s*''$/.exec(c.trim());
    assert.ok(m, `unsupported if: ${c}`);
    const empty = (inputs[m[1]!] ?? '') === '';
    return m[2] === '==' ? empty : !empty;
  };
  for (const step of yml.runs.steps ?? []) {
    if (!condition(step.if)) continue;
    const m = /^node "\$GITHUB_ACTION_PATH\/(?:\.\.\/)*dist\/([\w-]+)\/index\.mjs"$/.exec(step.run?.trim() ?? '');
    assert.ok(m, `composite step runs one of our bundles: ${step.run}`);
    assert.ok(!/\$\{\{/.test(step.run!), 'no ${{ }} inside run:');
    const stepInputs: Record<string, string> = {};
    for (const [k, v] of Object.entries(step.env ?? {})) {
      assert.ok(k.startsWith('INPUT_'), `step env ${k} is an INPUT_ variable`);
      stepInputs[k.slice('INPUT_'.length).toLowerCase()] = expr(v);
    }
    const run = runActionBundle(m[1]!, { inputs: stepInputs, env: opts.env });
    assert.equal(run.code, 0, `step ${step.id ?? m[1]} failed:\n${run.stdout}\n${run.stderr}`);
    if (step.id) steps[step.id] = run;
  }
  const outputs: Record<string, string> = {};
  for (const [k, v] of Object.entries(yml.outputs ?? {})) outputs[k] = expr(v.value ?? '');
  return { outputs, steps };
}
