import { describeError } from '../lib/errors.ts';
import type { DeployResult } from '../stages/deploy.ts';
import { stderrReporter } from '../stages/reporter.ts';
import { sshConnector } from '../stages/ssh-connector.ts';
import { readTarget, stagesFor } from '../stages/swarm.ts';
import { REGISTRY_FLAGS, STORE_FLAGS, without } from './common-flags.ts';
import type { Command, FlagSpec } from './args.ts';

const HOST_FLAGS: FlagSpec[] = [
  ...without(STORE_FLAGS, 'upload-concurrency'),
  {
    name: 'image-fetch',
    help: 'registry-less images: ssh (runner sends them, default) | url (hosts download, signed URLs)',
  },
  { name: 'target', help: 'compose (hosts over SSH, default) | swarm (a stack through a swarm manager)' },
  { name: 'docker-host', help: "swarm: the manager's DOCKER_HOST (on the SSH host; without hosts, from here)" },
  { name: 'hosts', multiple: true, help: 'host, host:port or user@host:port (repeatable)' },
  { name: 'inventory', help: 'YAML file of hosts with per-host root, project, probe-url' },
  { name: 'ssh-user', help: 'default SSH user (root)' },
  { name: 'ssh-port', help: 'default SSH port (22)' },
  { name: 'ssh-key', help: 'private key file (or its text)' },
  { name: 'ssh-passphrase', help: 'passphrase of the key' },
  { name: 'known-hosts', help: 'known_hosts file (or its text) pinning the host keys' },
  { name: 'insecure-ignore-host-key', help: 'true: accept any host key (loudly logged)' },
  { name: 'jump-host', help: 'bastion as user@host:port' },
  { name: 'root', help: 'deploy root on the hosts (/srv/lading)' },
  { name: 'project', help: 'compose project (default: from the manifest)' },
  { name: 'lock-ttl', help: 'seconds a lock is valid (900)' },
  { name: 'lock-wait', help: 'seconds to wait for a held lock (300)' },
  { name: 'health-timeout', help: 'seconds to become healthy (120)' },
  { name: 'health-stable', help: 'seconds without restarts for services without healthcheck (3)' },
  { name: 'probe-url', help: 'http(s) URL fetched from each host after the health gate' },
  { name: 'step-timeout', help: 'seconds per remote step (900)' },
  { name: 'max-parallel', help: 'hosts at once (1)' },
  { name: 'fail-fast', help: 'true | false (true)' },
  { name: 'max-failures', help: 'error budget: hosts (n or n%) that may fail before no further batch starts' },
  { name: 'canary', help: 'deploy the first N hosts first; any failure there stops the rollout (0)' },
  ...without(REGISTRY_FLAGS, 'insecure-registries'),
  { name: 'run-id', help: 'lock owner / history run id' },
  { name: 'json', boolean: true, help: 'print the per-host results as JSON' },
];

function report(result: DeployResult, json: boolean | string | undefined): number {
  if (json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else {
    for (const h of result.hosts) {
      process.stdout.write(
        `${h.host}\t${h.status}\t${h.release ?? ''}\t${h.seconds}s${h.error ? `\t${h.error.split('\n')[0]}` : ''}\n`,
      );
    }
  }
  return result.ok ? 0 : 1;
}

export const deployCommand: Command = {
  name: 'deploy',
  summary: 'deploy a manifest to hosts over SSH with docker-compose (lock, pull, up, health gate, rollback)',
  flags: [
    { name: 'manifest', help: 'manifest file, JSON, https URL, s3://bucket/key or gs://bucket/object' },
    { name: 'rollback', help: 'true | false: roll back a host whose new release fails (true)' },
    { name: 'keep-releases', help: 'releases kept per host (5)' },
    { name: 'prune-images', help: 'true | false: remove images only pruned releases used (false)' },
    { name: 'allow-downgrade', help: 'true: deploy a manifest older than the running one on its channel' },
    { name: 'update-parallelism', help: 'swarm: tasks updated at once (1)' },
    { name: 'update-delay', help: 'swarm: seconds between update batches (5)' },
    { name: 'update-monitor', help: 'swarm: seconds a new task is watched for failure (15)' },
    { name: 'update-order', help: 'swarm: auto (start-first where safe) | start-first | stop-first' },
    ...HOST_FLAGS,
  ],
  async run(read, flags) {
    return report(
      await stagesFor(readTarget(read)).deploy({
        read,
        env: process.env,
        reporter: stderrReporter(),
        connector: sshConnector,
      }),
      flags.json,
    );
  },
};

export const rollbackCommand: Command = {
  name: 'rollback',
  summary: 'roll hosts back to an earlier release (previous, or a release id, tag or sha), without a build',
  flags: [{ name: 'to', help: 'previous (default), a release id, a tag or a sha' }, ...HOST_FLAGS],
  async run(read, flags) {
    return report(
      await stagesFor(readTarget(read)).rollback({
        read,
        env: process.env,
        reporter: stderrReporter(),
        connector: sshConnector,
      }),
      flags.json,
    );
  },
};

export const releasesCommand: Command = {
  name: 'releases',
  summary: 'list the releases on each host, the current one, and who deployed what when',
  flags: HOST_FLAGS,
  async run(read, flags) {
    const hosts = await stagesFor(readTarget(read)).releases({
      read,
      env: process.env,
      reporter: stderrReporter(true),
      connector: sshConnector,
    });
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(hosts, null, 2)}\n`);
      return hosts.some((h) => h.error) ? 1 : 0;
    }
    for (const h of hosts) {
      process.stdout.write(`${h.host}: ${h.error ? describeError(h.error) : `current ${h.current ?? '(none)'}`}\n`);
      for (const e of h.history) {
        const mark = e.release === h.current && e.result === 'success' ? '*' : ' ';
        process.stdout.write(
          `  ${mark} ${e.time}  ${e.action.padEnd(13)} ${e.result.padEnd(7)} ${e.release}  ${e.actor ?? ''} ${e.run ?? ''}\n`,
        );
      }
    }
    return hosts.some((h) => h.error) ? 1 : 0;
  },
};
