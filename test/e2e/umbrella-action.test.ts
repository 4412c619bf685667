import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runComposite } from '../helpers/composite.ts';
import { eventPath, githubEnv } from '../helpers/github.ts';

const SHA = '860c1904a1ce19322e91ac35af1ab07466440c37';

describe('the umbrella action.yml (composite) run step by step as a runner would', () => {
  it('maps inputs to the tags bundle and its outputs back', () => {
    const { outputs } = runComposite('.', {
      inputs: { images: 'ghcr.io/acme/web', channels: 'main=edge', 'sha-length': '8' },
      env: { ...githubEnv('push', 'refs/heads/main', SHA), GITHUB_EVENT_PATH: eventPath('push-main') },
    });
    assert.equal(outputs.tags, 'main-860c1904\nedge');
    assert.equal(outputs.refs, 'ghcr.io/acme/web:main-860c1904\nghcr.io/acme/web:edge');
    assert.equal(outputs.primary, 'main-860c1904');
  });
});
