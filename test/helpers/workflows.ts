import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT } from './bundles.ts';
import { parseOutputFile } from './github.ts';

/** The owner/name the workflows and examples reference lading by (`lading-dev/lading@v0`). */
export const LADING_REPO = 'lading-dev/lading';

export interface ActionInput {
  description?: unknown;
  required?: unknown;
  default?: unknown;
}
export interface ActionStep {
  id?: string;
  name?: string;
  uses?: string;
  run?: string;
  shell?: string;
  if?: string;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
}
export interface ActionYaml {
  name?: string;
  description?: string;
  inputs?: Record<string, ActionInput>;
  outputs?: Record<string, { description?: unknown; value?: string }>;
  runs: { using: string; main?: string; steps?: ActionStep[] };
}
export interface WorkflowJob {
  uses?: string;
  with?: Record<string, unknown>;
  secrets?: 'inherit' | Record<string, unknown>;
  needs?: string | string[];
  outputs?: Record<string, string>;
  steps?: ActionStep[];
  [k: string]: unknown;
}
export interface WorkflowYaml {
  name?: string;
  on: Record<string, unknown> | string | string[];
  jobs: Record<string, WorkflowJob>;
}
export interface WorkflowCall {
  inputs?: Record<string, { required?: boolean; default?: unknown; type?: string; description?: string }>;
  secrets?: Record<string, { required?: boolean; description?: string }>;
  outputs?: Record<string, { value: string; description?: string }>;
}

/** The action.yml files of this repository: the umbrella at the root and every actions/<name>. */
export function actionDirs(): string[] {
  const dirs = readdirSync(join(REPO_ROOT, 'actions'))
    .filter((d) => existsSync(join(REPO_ROOT, 'actions', d, 'action.yml')))
    .sort()
    .map((d) => `actions/${d}`);
  return ['', ...dirs];
}

export function loadAction(dir: string): ActionYaml {
  return parse(readFileSync(join(REPO_ROOT, dir, 'action.yml'), 'utf8')) as ActionYaml;
}

function walk(dir: string, out: string[]): string[] {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (name === 'node_modules') continue;
    if (statSync(p).isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

/** Every GitHub workflow: .github/workflows/*.yml and every .github/workflows/*.yml under examples/. */
export function workflowFiles(): string[] {
  const files = [
    ...walk(join(REPO_ROOT, '.github', 'workflows'), []),
    ...walk(join(REPO_ROOT, 'examples'), []).filter((f) => /\/\.github\/workflows\/[^/]+\.ya?ml$/.test(f)),
  ];
  return files.filter((f) => /\.ya?ml$/.test(f)).map((f) => relative(REPO_ROOT, f));
}

/** Every file under examples/ (relative to the repository). */
export function exampleFiles(): string[] {
  return walk(join(REPO_ROOT, 'examples'), []).map((f) => relative(REPO_ROOT, f));
}

export function loadWorkflow(file: string): WorkflowYaml {
  return parse(readFileSync(join(REPO_ROOT, file), 'utf8')) as WorkflowYaml;
}

export function workflowCall(wf: WorkflowYaml): WorkflowCall | undefined {
  if (typeof wf.on !== 'object' || Array.isArray(wf.on) || !('workflow_call' in wf.on)) return undefined;
  return (wf.on.workflow_call ?? {}) as WorkflowCall;
}

/** `lading-dev/lading@v0` → '' (the umbrella); `lading-dev/lading/actions/deploy@v0` or `./actions/deploy` → 'actions/deploy'. */
export function ourAction(uses: string | undefined): string | undefined {
  if (!uses) return undefined;
  const remote = new RegExp(`^${LADING_REPO}(?:/(actions/[\\w-]+))?@[\\w.-]+$`).exec(uses);
  if (remote) return remote[1] ?? '';
  const local = /^\.\/(actions\/[\w-]+)?\/?$/.exec(uses);
  if (local) return local[1] ?? '';
  return undefined;
}

/** `lading-dev/lading/.github/workflows/deploy.yml@v0` or `./.github/workflows/deploy.yml` → '.github/workflows/deploy.yml'. */
export function ourWorkflow(uses: string | undefined): string | undefined {
  if (!uses) return undefined;
  const m =
    new RegExp(`^${LADING_REPO}/(\\.github/workflows/[\\w.-]+\\.ya?ml)@[\\w.-]+$`).exec(uses) ??
    /^\.\/(\.github\/workflows\/[\w.-]+\.ya?ml)$/.exec(uses);
  return m?.[1];
}

/** Every string inside a value (with:, env:, if:, outputs: …), for scanning expressions. */
export function strings(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.flatMap(strings);
  if (v && typeof v === 'object') return Object.values(v).flatMap(strings);
  return [];
}

/** `${{ … steps.<id>.outputs.<name> … }}` references in a text. */
export function stepOutputRefs(text: string): Array<{ step: string; output: string }> {
  const refs: Array<{ step: string; output: string }> = [];
  for (const expr of text.matchAll(/\$\{\{([\s\S]*?)\}\}/g)) {
    for (const m of expr[1]!.matchAll(/\bsteps\.([\w-]+)\.outputs\.([\w-]+)/g))
      refs.push({ step: m[1]!, output: m[2]! });
  }
  return refs;
}

/**
 * Runs one `run:` step of a workflow job with bash the way a runner does (`bash --noprofile --norc -eo pipefail`),
 * with the given env (what its `env:` would resolve to), GITHUB_OUTPUT, GITHUB_STEP_SUMMARY and RUNNER_TEMP.
 */
export function runWorkflowStep(
  file: string,
  job: string,
  stepId: string,
  env: Record<string, string>,
): { code: number; stdout: string; stderr: string; outputs: Record<string, string>; summary: string } {
  const step = loadWorkflow(file).jobs[job]?.steps?.find((s) => s.id === stepId);
  if (!step?.run) throw new Error(`${file}: job ${job} has no run step ${stepId}`);
  const dir = mkdtempSync(join(tmpdir(), 'lading-wfstep-'));
  try {
    const script = join(dir, 'step.sh');
    const out = join(dir, 'output');
    const summary = join(dir, 'summary');
    writeFileSync(script, step.run);
    writeFileSync(out, '');
    writeFileSync(summary, '');
    const res = spawnSync('bash', ['--noprofile', '--norc', '-eo', 'pipefail', script], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? '/root',
        RUNNER_TEMP: dir,
        GITHUB_OUTPUT: out,
        GITHUB_STEP_SUMMARY: summary,
        ...env,
      },
      encoding: 'utf8',
    });
    return {
      code: res.status ?? -1,
      stdout: res.stdout,
      stderr: res.stderr,
      outputs: parseOutputFile(readFileSync(out, 'utf8')),
      summary: readFileSync(summary, 'utf8'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
