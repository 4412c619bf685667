import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openStore } from '../../src/io/store.ts';
import { type AgentConfig, MANIFEST_ARTIFACT_TYPE, parseAgentConfig } from '../../src/lib/agent-config.ts';
import { composeFile, type Manifest, serializeManifest, validateManifest } from '../../src/lib/manifest.ts';
import { storeKeys } from '../../src/lib/store-location.ts';
import { signWebhook } from '../../src/lib/webhook.ts';
import { sendNotification } from '../../src/io/notify.ts';
import { Agent } from '../../src/stages/agent.ts';
import { selfSigned } from '../helpers/tls.ts';
import { type ChannelSource, channelSource } from '../../src/stages/agent-source.ts';
import { stderrReporter } from '../../src/io/reporter.ts';
import { webApp } from '../helpers/deploy-fixture.ts';
import { docker, removeProject, testEnv, unique } from '../helpers/testenv.ts';
import { agentHostSettings } from '../../src/settings/agent.ts';

const env = testEnv();
process.env.AWS_ACCESS_KEY_ID ??= env.s3.accessKeyId;
process.env.AWS_SECRET_ACCESS_KEY ??= env.s3.secretAccessKey;

/** A copy of a built manifest as another build of the same images (new sha, time, tag, channel). */
function variant(m: Manifest, n: number, opts: { channel?: string; day?: number } = {}): Manifest {
  const tag = `b${n}-${'abcdef0'}`;
  const copy = structuredClone(m) as Manifest;
  copy.source.sha = `${String(n % 10).repeat(6)}${n.toString(16).padStart(34, '0')}`.slice(0, 40);
  copy.source.created = new Date(Date.UTC(2026, 5, opts.day ?? 1, 0, 0, n)).toISOString();
  copy.tags = [tag];
  copy.primary = tag;
  copy.compose!.env = { ...copy.compose!.env, DOCKER_TAG: tag };
  if (opts.channel) copy.channel = opts.channel;
  return validateManifest(copy);
}

function historyOf(root: string, project: string): Array<{ action: string; result: string; primary: string }> {
  const file = join(root, project, 'history.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
}

const currentOf = (root: string, project: string) => readlinkSync(join(root, project, 'current'));

describe('lading agent, poll mode, following a channel manifest in s3rver', () => {
  const app = webApp();
  const prefix = `${unique('agent')}/`;
  const key = storeKeys.manifestChannel(prefix, 'latest');
  let root = '';
  let cfg: AgentConfig;
  let agent: Agent;
  let source: ChannelSource;
  const built: Manifest[] = [];
  const publish = async (m: Manifest) => {
    const store = await openStore(
      { kind: 's3', bucket: env.s3.bucket, prefix: '' },
      { endpoint: env.s3.endpoint, forcePathStyle: true },
    );
    await store.put(key, serializeManifest(m), { contentType: 'application/json' });
  };
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'lading-agent-poll-'));
    built.push(
      variant(app.version(1), 1, { channel: 'latest', day: 1 }),
      variant(app.version(2), 2, { channel: 'latest', day: 2 }),
      variant(app.version(3, { healthy: false }), 3, { channel: 'latest', day: 3 }),
    );
    cfg = parseAgentConfig(
      `
channel: latest
manifest:
  store: s3://${env.s3.bucket}/${prefix}
  endpoint: ${env.s3.endpoint}
  region: ${env.s3.region}
  path-style: true
deploy:
  root: ${root}
  health-timeout: 12
  health-stable: 2
  docker-host: ${env.dockerHost}
poll:
  interval: 1
`,
      { hostname: 'test' },
    );
    agent = new Agent(cfg, { reporter: stderrReporter(true), hostSettings: (e) => agentHostSettings(cfg, e) });
    source = await channelSource(cfg);
  });
  after(() => {
    try {
      removeProject(app.project);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('says clearly when the channel has no manifest yet', async () => {
    await assert.rejects(agent.pollOnce(source), /manifests\/channels\/latest\.json does not exist/);
  });

  it('picks up v1 from the bucket and deploys it with the deploy stage (release dir, current, history)', async () => {
    await publish(built[0]!);
    const event = await agent.pollOnce(source);
    assert.equal(event?.outcome, 'deployed', JSON.stringify(event));
    assert.equal(await app.probe(), 'v1');
    assert.match(currentOf(root, app.project), /b1-abcdef0$/);
    assert.deepEqual(
      historyOf(root, app.project).map((h) => `${h.action}:${h.result}:${h.primary}`),
      ['deploy:success:b1-abcdef0'],
    );
    assert.ok(!existsSync(join(root, app.project, '.lock')), 'the lock is released');
  });

  it('does not read or deploy again while the object is unchanged, nor for the same manifest re-published', async () => {
    assert.equal(await agent.pollOnce(source), undefined);
    const again = structuredClone(built[0]!);
    again.source.created = new Date(Date.UTC(2026, 5, 1, 12)).toISOString(); // new object, same deploy
    await publish(again);
    const event = await agent.pollOnce(source);
    assert.equal(event?.outcome, 'skipped');
    assert.equal(historyOf(root, app.project).length, 1);
  });

  it('deploys v2 when it is published, then rolls back a broken v3 and does not retry it', async () => {
    await publish(built[1]!);
    assert.equal((await agent.pollOnce(source))?.outcome, 'deployed');
    assert.equal(await app.probe(), 'v2');
    await publish(built[2]!);
    const broken = await agent.pollOnce(source);
    assert.equal(broken?.outcome, 'rolled-back', JSON.stringify(broken));
    assert.equal(await app.probe(), 'v2');
    assert.match(currentOf(root, app.project), /b2-abcdef0$/);
    assert.equal(await agent.pollOnce(source), undefined, 'same object: not read again');
    assert.deepEqual(
      historyOf(root, app.project)
        .slice(-2)
        .map((h) => `${h.action}:${h.result}`),
      ['deploy:failure', 'auto-rollback:success'],
    );
  });

  it('a new agent (restart) with the state file does not retry the broken manifest', async () => {
    const fresh = new Agent(cfg, { reporter: stderrReporter(true), hostSettings: (e) => agentHostSettings(cfg, e) });
    const event = await fresh.pollOnce(await channelSource(cfg));
    assert.equal(event, undefined, 'the version was remembered');
    const state = JSON.parse(readFileSync(cfg.stateFile, 'utf8'));
    assert.equal(state.tried.length, 3);
  });

  it('refuses a downgrade by the deploy stage rules: an older v1 re-published to latest is not deployed', async () => {
    const old = variant(built[0]!, 11, { channel: 'latest', day: 1 }); // another build, older than v2
    await publish(old);
    const event = await agent.pollOnce(source);
    assert.equal(event?.outcome, 'failed');
    assert.match(event?.error ?? '', /refusing to downgrade/);
    assert.equal(await app.probe(), 'v2');
  });

  it('the poll loop deploys a newer manifest within an interval or two', async () => {
    const v4 = variant(built[0]!, 4, { channel: 'latest', day: 4 }); // v1's image, built later
    const stop = new AbortController();
    const loop = agent.pollLoop(source, 1, stop.signal);
    await publish(v4);
    const deadline = Date.now() + 60_000;
    while (!agent.events.some((e) => e.manifest === v4.primary) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
    }
    stop.abort();
    await loop;
    await agent.settled();
    assert.equal(agent.events.find((e) => e.manifest === v4.primary)?.outcome, 'deployed');
    assert.equal(await app.probe(), 'v1');
  });

  it('takes compose-env values from deploy.env-file: the container sees them, the manifest only names them', async () => {
    const v5 = variant(built[0]!, 5, { channel: 'latest', day: 5 });
    const f = v5.compose!.files[0]!;
    v5.compose!.files[0] = composeFile(
      f.path,
      f.content.replace('    network_mode: host\n', '    network_mode: host\n    environment: [API_TOKEN]\n'),
    );
    v5.compose!.envNames = ['API_TOKEN'];
    v5.schema = 'lading.manifest/v3';
    await publish(validateManifest(v5));
    // without the values: refused before the host is touched, v4 keeps serving
    const refused = await agent.pollOnce(source);
    assert.equal(refused?.outcome, 'failed');
    assert.match(refused?.error ?? '', /needs a value for API_TOKEN.*deploy\.env-file/s);
    assert.equal(await app.probe(), 'v1');
    const envFile = join(root, 'app.env');
    writeFileSync(envFile, 'API_TOKEN=from-the-agent-env-file\n', { mode: 0o600 });
    const withEnvFile = { ...cfg, deploy: { ...cfg.deploy, envFile }, stateFile: join(root, 'state-env.json') };
    const withValues = new Agent(withEnvFile, {
      reporter: stderrReporter(true),
      hostSettings: (e) => agentHostSettings(withEnvFile, e),
    });
    const event = await withValues.pollOnce(source);
    assert.equal(event?.outcome, 'deployed', JSON.stringify(event));
    const id = docker(['ps', '-q', '--filter', `label=com.docker.compose.project=${app.project}`]).split('\n')[0]!;
    assert.ok(
      docker(['inspect', '--format', '{{json .Config.Env}}', id]).includes('API_TOKEN=from-the-agent-env-file'),
    );
    const kept = readFileSync(join(root, app.project, 'current', 'manifest.json'), 'utf8');
    assert.doesNotMatch(kept, /from-the-agent-env-file/);
  });
});

/** A raw HTTPS POST (for requests notify would never send). */
function post(url: string, ca: Buffer, headers: Record<string, string>, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', ca, headers: { 'Content-Type': 'application/json', ...headers } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('lading agent, webhook mode over HTTPS', () => {
  const app = webApp();
  const prefix = `${unique('agent-hook')}/`;
  const secret = 'b2f1c0ffee0ddba11c0ffee0ddba11c0ffee';
  let root = '';
  let dir = '';
  let agent: Agent;
  let url = '';
  let ca: Buffer;
  let close: () => Promise<void>;
  let base: Manifest;
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'lading-agent-hook-'));
    dir = mkdtempSync(join(tmpdir(), 'lading-agent-tls-'));
    const tls = selfSigned(dir);
    ca = readFileSync(tls.cert);
    writeFileSync(join(dir, 'secret'), `${secret}\n`, { mode: 0o600 });
    base = app.version(1);
    const cfg = parseAgentConfig(`
channel: latest
manifest:
  store: s3://${env.s3.bucket}/${prefix}
  endpoint: ${env.s3.endpoint}
deploy:
  root: ${root}
  health-timeout: 30
  health-stable: 1
  docker-host: ${env.dockerHost}
webhook:
  listen: 127.0.0.1:0
  tls-cert: ${tls.cert}
  tls-key: ${tls.key}
  secret-file: ${join(dir, 'secret')}
  max-body: 1m
  timestamp-window: 300
`);
    agent = new Agent(cfg, { reporter: stderrReporter(true), hostSettings: (e) => agentHostSettings(cfg, e) });
    const { readWebhookSecret } = await import('../../src/stages/agent-webhook.ts');
    const listener = await agent.listen(readWebhookSecret(cfg, {}));
    url = listener.url;
    close = listener.close;
  });
  after(async () => {
    await close?.();
    try {
      removeProject(app.project);
    } finally {
      rmSync(root, { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const deploys = () => historyOf(root, app.project).filter((h) => h.action === 'deploy');

  it('a valid signature naming a manifest location in the bucket deploys it', async () => {
    const m = variant(base, 1);
    const store = await openStore({ kind: 's3', bucket: env.s3.bucket, prefix: '' }, { endpoint: env.s3.endpoint });
    const key = storeKeys.manifestBySha(prefix, m.source.sha);
    await store.put(key, serializeManifest(m));
    const res = await sendNotification({
      url,
      secret,
      location: `s3://${env.s3.bucket}/${key}`,
      channel: 'latest',
      ca,
    });
    assert.equal(res.status, 202, res.body);
    await agent.settled();
    assert.equal(await app.probe(), 'v1');
    assert.deepEqual(
      deploys().map((h) => `${h.result}:${h.primary}`),
      ['success:b1-abcdef0'],
    );
  });

  it('refuses a wrong signature, a stale timestamp, a replay, a 10 MB body and a malformed one, deploying nothing', async () => {
    const before = deploys().length;
    const events = agent.events.length;
    const m = variant(base, 2);
    const wrong = await sendNotification({ url, secret: 'not-the-secret-at-all-no', manifest: m, ca });
    assert.equal(wrong.status, 401, wrong.body);
    const stale = await sendNotification({ url, secret, manifest: m, ca, now: () => new Date(Date.now() - 3600_000) });
    assert.equal(stale.status, 401, stale.body);
    assert.match(stale.body, /window/);
    const github = await sendNotification({
      url,
      secret,
      manifest: m,
      ca,
      format: 'github',
      now: () => new Date(Date.now() - 3600_000),
    });
    assert.equal(github.status, 401, github.body);

    // A replay: the exact bytes and headers of a request the agent accepted.
    const body = Buffer.from(JSON.stringify({ manifest: variant(base, 1), channel: 'latest' }));
    const headers = signWebhook(secret, body, { timestamp: Math.floor(Date.now() / 1000) });
    assert.equal(await post(url, ca, headers, body), 200, 'the first delivery: already deployed, nothing to do');
    assert.equal(await post(url, ca, headers, body), 409, 'the same delivery again');

    const huge = Buffer.alloc(10 * 1024 * 1024, 0x20);
    assert.equal(
      await post(url, ca, signWebhook(secret, huge, { timestamp: Math.floor(Date.now() / 1000) }), huge),
      413,
    );
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = request(url, { method: 'POST', ca, headers: { 'Transfer-Encoding': 'chunked' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      for (let i = 0; i < 10; i++) req.write(Buffer.alloc(1024 * 1024, 0x20));
      req.end();
    });
    assert.equal(chunked, 413, 'a body without Content-Length is cut off at the limit too');

    const junk = Buffer.from('{"manifest": {"schema": "lading.manifest/v1"}}');
    assert.equal(
      await post(url, ca, signWebhook(secret, junk, { timestamp: Math.floor(Date.now() / 1000) }), junk),
      422,
    );
    const notJson = Buffer.from('deploy!');
    assert.equal(
      await post(url, ca, signWebhook(secret, notJson, { timestamp: Math.floor(Date.now() / 1000) }), notJson),
      400,
    );
    const outside = await sendNotification({ url, secret, location: 's3://another-bucket/m.json', ca });
    assert.equal(outside.status, 422, outside.body);
    // The same bucket, another prefix: a valid manifest there is still outside this agent's store.
    const store = await openStore({ kind: 's3', bucket: env.s3.bucket, prefix: '' }, { endpoint: env.s3.endpoint });
    await store.put(`not-${prefix}x.json`, serializeManifest(variant(base, 9)));
    const otherPrefix = await sendNotification({
      url,
      secret,
      location: `s3://${env.s3.bucket}/not-${prefix}x.json`,
      ca,
    });
    assert.equal(otherPrefix.status, 422, otherPrefix.body);
    assert.match(
      otherPrefix.body,
      new RegExp(`outside the store this agent reads \\(s3://${env.s3.bucket}/${prefix}\\)`),
    );
    const climbing = await sendNotification({
      url,
      secret,
      location: `s3://${env.s3.bucket}/${prefix}../not-${prefix}x.json`,
      ca,
    });
    assert.equal(climbing.status, 422, climbing.body);
    const otherChannel = await sendNotification({ url, secret, manifest: m, channel: 'stage', ca });
    assert.equal(otherChannel.status, 422);

    await agent.settled();
    assert.equal(deploys().length, before, 'nothing was deployed');
    assert.equal(agent.events.slice(events).filter((e) => e.outcome !== 'skipped').length, 0);
    assert.equal(await app.probe(), 'v1');
  });

  it('a burst of 20 signed requests ends in one or two deploys, on the newest manifest', async () => {
    const before = deploys().length;
    const burst = Array.from({ length: 20 }, (_, i) => variant(base, 100 + i));
    const order = [...burst].sort(() => Math.random() - 0.5);
    const answers = await Promise.all(
      order.map((m) => sendNotification({ url, secret, manifest: m, channel: 'latest', ca })),
    );
    assert.ok(
      answers.every((a) => a.status === 202 || a.status === 200),
      answers.map((a) => a.status).join(','),
    );
    await agent.settled();
    const made = deploys().slice(before);
    assert.ok(made.length >= 1 && made.length <= 2, `${made.length} deploys: ${made.map((h) => h.primary).join(', ')}`);
    assert.equal(made.at(-1)!.primary, burst.at(-1)!.primary);
    assert.ok(made.every((h) => h.result === 'success'));
    assert.match(currentOf(root, app.project), new RegExp(`${burst.at(-1)!.primary}$`));
  });
});

/** Pushes `text` to a plain v2 registry as an OCI artifact whose one layer is the lading manifest. */
async function pushManifestArtifact(host: string, repository: string, tag: string, text: string): Promise<void> {
  const { createHash } = await import('node:crypto');
  const base = `http://${host}/v2/${repository}`;
  const blob = async (bytes: Buffer) => {
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const start = await fetch(`${base}/blobs/uploads/`, { method: 'POST' });
    assert.equal(start.status, 202);
    const loc = new URL(start.headers.get('location')!, `http://${host}`);
    loc.searchParams.set('digest', digest);
    const put = await fetch(loc, {
      method: 'PUT',
      body: bytes,
      headers: { 'Content-Type': 'application/octet-stream' },
    });
    assert.equal(put.status, 201, await put.text());
    return { digest, size: bytes.length };
  };
  const config = await blob(Buffer.from('{}'));
  const layer = await blob(Buffer.from(text));
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: MANIFEST_ARTIFACT_TYPE, ...layer }],
  };
  const res = await fetch(`${base}/manifests/${tag}`, {
    method: 'PUT',
    body: JSON.stringify(manifest),
    headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
  });
  assert.equal(res.status, 201, await res.text());
}

describe('lading agent, poll mode, following a manifest artifact in a registry', () => {
  const app = webApp();
  const repository = `${unique('agent-oci')}/manifest`;
  let root = '';
  after(() => {
    try {
      removeProject(app.project);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('deploys the manifest the channel tag points at, and reads nothing more while the digest is the same', async () => {
    root = mkdtempSync(join(tmpdir(), 'lading-agent-oci-'));
    const m = app.version(1);
    await pushManifestArtifact(env.registry.host, repository, 'latest', serializeManifest(m));
    const cfg = parseAgentConfig(`
manifest:
  registry: ${env.registry.host}/${repository}
deploy:
  root: ${root}
  health-timeout: 12
  health-stable: 1
  docker-host: ${env.dockerHost}
poll: { interval: 5 }
`);
    const agent = new Agent(cfg, { reporter: stderrReporter(true), hostSettings: (e) => agentHostSettings(cfg, e) });
    const source = await channelSource(cfg);
    assert.equal(source.describe, `${env.registry.host}/${repository}:latest`);
    const event = await agent.pollOnce(source);
    assert.equal(event?.outcome, 'deployed', JSON.stringify(event));
    assert.equal(await app.probe(), 'v1');
    assert.equal(await agent.pollOnce(source), undefined);
  });
});
