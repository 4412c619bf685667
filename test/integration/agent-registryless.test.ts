import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openStore } from '../../src/io/store.ts';
import { parseAgentConfig } from '../../src/lib/agent-config.ts';
import { serializeManifest } from '../../src/lib/manifest.ts';
import { storeKeys } from '../../src/lib/store-location.ts';
import { Agent } from '../../src/stages/agent.ts';
import { channelSource } from '../../src/stages/agent-source.ts';
import { stderrReporter } from '../../src/io/reporter.ts';
import { webApp } from '../helpers/deploy-fixture.ts';
import { docker, removeProject, testEnv, unique } from '../helpers/testenv.ts';
import { agentHostSettings } from '../../src/settings/agent.ts';

/** Pull mode without a registry: the agent follows a channel in the bucket that also holds the images. */
describe('lading agent with a registry-less manifest (images and manifests in one bucket)', () => {
  const env = testEnv();
  process.env.AWS_ACCESS_KEY_ID ??= env.s3.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY ??= env.s3.secretAccessKey;
  const prefix = unique('agent-rl');
  const app = webApp({ store: `s3://${env.s3.bucket}/${prefix}` });
  let root = '';
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'lading-agent-rl-'));
  });
  after(() => {
    removeProject(app.project);
    rmSync(root, { recursive: true, force: true });
  });

  it('loads the image from the bucket on the host itself and deploys it', async () => {
    const manifest = { ...(await app.storedVersion(1)), channel: 'latest' };
    const store = await openStore(
      { kind: 's3', bucket: env.s3.bucket, prefix: '' },
      { endpoint: env.s3.endpoint, forcePathStyle: true },
    );
    await store.put(storeKeys.manifestChannel(`${prefix}/`, 'latest'), serializeManifest(manifest));
    const cfg = parseAgentConfig(
      `
channel: latest
manifest:
  store: s3://${env.s3.bucket}/${prefix}
  endpoint: ${env.s3.endpoint}
  region: ${env.s3.region}
  path-style: true
deploy:
  root: ${root}
  health-timeout: 30
  health-stable: 1
  docker-host: ${env.dockerHost}
poll:
  interval: 60
`,
      { hostname: 'test' },
    );
    const agent = new Agent(cfg, { reporter: stderrReporter(true), hostSettings: (e) => agentHostSettings(cfg, e) });
    const event = await agent.pollOnce(await channelSource(cfg));
    assert.equal(event?.outcome, 'deployed', JSON.stringify(event));
    assert.equal(await app.probe(), 'v1');
    assert.equal(
      docker(['image', 'inspect', '--format', '{{.Id}}', manifest.images[0]!.digest]),
      manifest.images[0]!.digest,
    );
  });
});
