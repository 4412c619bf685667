import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/bundles.ts';
import { testEnv } from '../helpers/testenv.ts';

/** The swarm facts step's errors say what is wrong in words, against a real dockerd (not a swarm) and no dockerd. */
describe('swarm facts: errors a person can read', () => {
  const env = testEnv();
  const script = ['host.sh', 'swarm.sh'].map((f) => readFileSync(join(REPO_ROOT, 'src/lib/remote', f), 'utf8'));
  const facts = (dockerHost: string) =>
    spawnSync('sh', ['-c', `${script.join('\n')}\nlading_swarm swarm_facts`], {
      encoding: 'utf8',
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        DOCKER_HOST: dockerHost,
        LADING_ROOT: '/nonexistent',
        LADING_PROJECT: 'shop',
      },
    });

  it('a docker that does not answer: its own error line, and which DOCKER_HOST was tried', () => {
    const res = facts('unix:///nonexistent/docker.sock');
    assert.equal(res.status, 1);
    assert.match(
      res.stderr,
      new RegExp(
        `docker does not answer on ${hostname()}: Cannot connect to the Docker daemon at unix:///nonexistent/docker.sock.*\\(DOCKER_HOST=unix:///nonexistent/docker.sock\\)`,
      ),
    );
    assert.doesNotMatch(res.stderr, / false/);
  });

  it('a docker that is not in a swarm: says so, and how to fix it', () => {
    const res = facts(env.dockerHost);
    assert.equal(res.status, 1);
    assert.match(res.stderr, /is not part of a swarm \(docker info: Swarm: inactive\): run docker swarm init there/);
    assert.doesNotMatch(res.stderr, /inactive false/);
  });
});
