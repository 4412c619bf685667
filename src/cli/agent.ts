import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { parseAgentConfig } from '../lib/agent-config.ts';
import { InputError } from '../lib/errors.ts';
import { webhookSecret } from '../lib/webhook.ts';
import { parseManifest } from '../lib/manifest.ts';
import { parseChoice } from '../lib/inputs.ts';
import { fileSignature } from '../io/manifest-source.ts';
import { sendNotification } from '../io/notify.ts';
import { Agent } from '../stages/agent.ts';
import { channelSource } from '../stages/agent-source.ts';
import { readWebhookSecret } from '../stages/agent-webhook.ts';
import { stderrReporter } from '../io/reporter.ts';
import type { Command } from './args.ts';
import { agentHostSettings } from '../settings/agent.ts';

export const agentCommand: Command = {
  name: 'agent',
  summary: 'pull mode on a host: follow a channel (poll and/or signed webhook) and deploy new manifests here',
  async run(read, flags) {
    const path = read('config');
    if (!path) throw new InputError('config', 'is empty', 'pass --config /etc/lading/agent.yml');
    const text = await readFile(path, 'utf8').catch(() => {
      throw new InputError('config', `${path} cannot be read`);
    });
    const cfg = parseAgentConfig(text, { hostname: hostname(), source: path, once: !!flags.once });
    const reporter = stderrReporter(false, { timestamps: true }); // its log is often a file (cron, nohup)
    const agent = new Agent(cfg, { reporter, hostSettings: (env) => agentHostSettings(cfg, env) });
    const source = await channelSource(cfg, reporter);
    if (flags.once) {
      const event = await agent.pollOnce(source);
      await agent.settled();
      if (!event) {
        process.stdout.write(
          flags.json
            ? `${JSON.stringify({ outcome: 'unchanged', source: source.describe })}\n`
            : `unchanged\t${source.describe}\n`,
        );
        return 0;
      }
      process.stdout.write(
        flags.json
          ? `${JSON.stringify(event, null, 2)}\n`
          : `${event.outcome}\t${event.manifest}\t${event.release ?? ''}${event.error ? `\t${event.error.split('\n')[0]}` : ''}\n`,
      );
      return event.outcome === 'deployed' || event.outcome === 'skipped' ? 0 : 1;
    }
    const stop = new AbortController();
    const closers: Array<() => Promise<void>> = [];
    if (cfg.webhook) {
      const listener = await agent.listen(readWebhookSecret(cfg, process.env, true));
      closers.push(listener.close);
    }
    const loops: Promise<void>[] = [];
    if (cfg.poll) loops.push(agent.pollLoop(source, cfg.poll.interval, stop.signal));
    await new Promise<void>((resolve) => {
      const end = (signal: string) => {
        reporter.info(`${signal}: stopping (a deploy in progress is finished first)`);
        stop.abort();
        resolve();
      };
      process.once('SIGTERM', () => end('SIGTERM'));
      process.once('SIGINT', () => end('SIGINT'));
    });
    await Promise.all(closers.map((c) => c()));
    await Promise.all(loops);
    await agent.settled();
    return 0;
  },
};

export const notifyCommand: Command = {
  name: 'notify',
  summary: 'POST a signed webhook naming a manifest to a lading agent (the build side of pull mode)',
  async run(read, flags) {
    const url = read('url');
    if (!url) throw new InputError('url', 'is empty', 'pass the agent webhook URL');
    let secret = read('secret');
    const secretFile = read('secret-file');
    if (secretFile) {
      secret = await readFile(secretFile, 'utf8').catch(() => {
        throw new InputError('secret-file', `${secretFile} cannot be read`);
      });
    }
    const signWith = webhookSecret(
      secretFile ? 'secret-file' : 'secret',
      secret,
      "pass --secret-file (or LADING_SECRET) holding the agent's webhook secret",
    );
    const raw = read('manifest');
    const location = read('location');
    if (!!raw === !!location) {
      throw new InputError('manifest', raw ? 'and location are both set' : 'is empty (and so is location)', 'give one');
    }
    const manifest = raw
      ? parseManifest(
          raw.trimStart().startsWith('{')
            ? raw
            : await readFile(raw, 'utf8').catch(() => {
                throw new InputError('manifest', `${raw} does not exist`);
              }),
          raw.trimStart().startsWith('{') ? 'the manifest input' : raw,
        )
      : undefined;
    // an inline manifest read from a file takes its signature along (<file>.sig), for agents that require one; no
    // .sig sends it unsigned, an unreadable one is an error (sent unsigned, a requiring agent would only say 401)
    const signature = raw && !raw.trimStart().startsWith('{') ? await fileSignature(raw, 'manifest') : undefined;
    const caFile = read('ca-file');
    const ca = caFile
      ? await readFile(caFile).catch(() => {
          throw new InputError('ca-file', `${caFile} cannot be read`);
        })
      : undefined;
    const channel = read('channel') ?? manifest?.channel;
    const res = await sendNotification({
      url,
      secret: signWith,
      ...(manifest ? { manifest, ...(signature ? { signature } : {}) } : { location: location! }),
      ...(channel ? { channel } : {}),
      format: parseChoice('format', read('format'), ['lading', 'github'] as const, 'lading'),
      ...(ca ? { ca } : {}),
    });
    process.stdout.write(
      flags.json
        ? `${JSON.stringify({ status: res.status, body: jsonOrText(res.body) }, null, 2)}\n`
        : `${res.status}\t${res.body.trim()}\n`,
    );
    if (res.status >= 200 && res.status < 300) return 0;
    process.stderr.write(`lading notify: the agent answered HTTP ${res.status}\n`);
    return 1;
  },
};

/** The agent's answer as JSON when it is JSON, else its text. */
function jsonOrText(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return body.trim();
  }
}
