import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { REPO_ROOT } from '../helpers/bundles.ts';
import { workflowFiles } from '../helpers/workflows.ts';

const OIDC = /aws-role-to-assume|gcp-workload-identity-provider|configure-aws-credentials|google-github-actions\/auth/;
const text = (f: string) => readFileSync(join(REPO_ROOT, f), 'utf8');

/** The raw text of each job of a workflow (comments included), by job id. */
function jobTexts(src: string): Record<string, string> {
  const lines = src.split('\n');
  const at = lines.indexOf('jobs:');
  const out: Record<string, string> = {};
  let id = '';
  for (const line of lines.slice(at + 1)) {
    const m = /^ {2}([\w-]+):\s*$/.exec(line);
    if (m) id = m[1]!;
    else if (/^\S/.test(line)) id = '';
    if (id) out[id] = `${out[id] ?? ''}${line}\n`;
  }
  return out;
}

describe('workflow hygiene (reusable workflows and examples)', () => {
  for (const file of workflowFiles()) {
    describe(file, () => {
      const src = text(file);
      const wf = parse(src) as { on?: unknown; permissions?: Record<string, string> };
      const reusable = typeof wf.on === 'object' && wf.on !== null && 'workflow_call' in wf.on;

      it('pins every third-party action by full commit SHA, with its version in a comment', () => {
        for (const m of src.matchAll(/uses:\s*(\S+)(.*)$/gm)) {
          const [ref, rest] = [m[1]!, m[2]!];
          if (ref.startsWith('./') || ref.startsWith('lading-dev/lading')) continue;
          assert.match(ref, /^[\w.-]+\/[\w./-]+@[0-9a-f]{40}$/, `${ref} is pinned by SHA`);
          assert.match(rest, /^\s*# v\d+\.\d+\.\d+$/, `${ref} names its version`);
        }
      });

      if (reusable) {
        it('declares no permissions: the calling job grants what it uses (no forced id-token or packages write)', () => {
          assert.doesNotMatch(src, /^\s*permissions:/m);
        });
      } else {
        it('grants id-token: write only to jobs that use OIDC, packages: write only to jobs pushing to ghcr.io', () => {
          assert.ok(!/id-token|packages/.test(JSON.stringify(wf.permissions ?? {})), 'not at the top level');
          for (const [job, body] of Object.entries(jobTexts(src))) {
            const token = /id-token:\s*write/.test(body);
            assert.equal(token, OIDC.test(body), `${job}: id-token: write exactly when it uses OIDC`);
            if (/packages:\s*write/.test(body)) assert.match(body, /ghcr\.io/, `${job}: packages: write for ghcr`);
          }
        });
      }

      it('queues deploys per environment (a concurrency group naming the environment, never cancelled)', () => {
        for (const [job, body] of Object.entries(jobTexts(src))) {
          if (!/^\s{4}environment:/m.test(body) || /uses: lading-dev\/lading\/\.github\/workflows\//.test(body))
            continue;
          // a read-only verb (status) may run in its own group; anything else queues in deploy-<environment>
          assert.match(
            body,
            /concurrency:\s*\n\s+group: (deploy-|\$\{\{.*'deploy-\{0\}', inputs\.environment\))/,
            `${job}: concurrency group per environment`,
          );
          assert.match(body, /cancel-in-progress: false/, `${job}: a running deploy is never cancelled`);
        }
      });
    });
  }

  it('build.yml sets up buildx where cache export or several platforms are asked for', () => {
    const src = text('.github/workflows/build.yml');
    assert.match(
      src,
      /- if: inputs\.cache-to != '' \|\| inputs\.platforms != ''\n\s+uses: docker\/setup-buildx-action@/,
    );
  });

  it('scheduled-rebuild.yml takes the OIDC inputs too and hands them to build.yml', () => {
    const wf = parse(text('.github/workflows/scheduled-rebuild.yml')) as {
      on: { workflow_call: { inputs: Record<string, unknown> } };
      jobs: { build: { with: Record<string, string> } };
    };
    for (const name of ['aws-role-to-assume', 'gcp-workload-identity-provider', 'gcp-service-account']) {
      assert.ok(name in wf.on.workflow_call.inputs, name);
      assert.equal(wf.jobs.build.with[name], `\${{ inputs.${name} }}`);
    }
  });
});
