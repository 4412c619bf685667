import * as core from '@actions/core';
import { LadingError } from '../../lib/errors.ts';
import { formatBytes, parseArgv, renderStatus } from '../../lib/ops.ts';
import type { HostStageOptions } from '../../stages/deploy.ts';
import { runLockStage } from '../../stages/ops/lock.ts';
import { runPruneStage } from '../../stages/ops/prune.ts';
import { runStatusStage } from '../../stages/ops/status.ts';
import { runExecStage, runLogsStage } from '../../stages/ops/stream.ts';
import { readExecSettings, readLockSettings, readLogsSettings, readPruneSettings } from '../../settings/ops.ts';
import { inputReader, writeSummary } from '../run.ts';

const readInput = inputReader('deploy');

export const OPS_COMMANDS = ['status', 'logs', 'exec', 'lock-status', 'lock-release', 'prune'] as const;
export type OpsCommand = (typeof OPS_COMMANDS)[number];
export const isOpsCommand = (c: string): c is OpsCommand => (OPS_COMMANDS as readonly string[]).includes(c);

/**
 * The day-2 verbs as deploy action commands: each sets `report` (the verb's JSON, for status the stable
 * lading.status/v1 report) and `status`, writes a summary, and fails the step when the verb failed.
 */
export async function runOpsCommand(command: OpsCommand, opts: HostStageOptions): Promise<void> {
  const done = (ok: boolean, report: unknown) => {
    core.setOutput('report', JSON.stringify(report));
    core.setOutput('status', ok ? 'success' : 'failure');
  };
  if (command === 'status') {
    const report = await runStatusStage(opts);
    done(report.ok, report);
    await core.group('lading status', async () => core.info(renderStatus(report)));
    await writeSummary((s) =>
      s
        .addHeading('lading: status', 3)
        .addTable([
          ['host', 'health', 'release', 'lock', 'drift / problems'].map((data) => ({ data, header: true })),
          ...report.hosts.map((h) => [
            h.host,
            !h.reachable ? 'unreachable' : h.healthy ? 'healthy' : 'unhealthy',
            h.release ? `${h.release.id} (${h.release.tag ?? '?'})` : '',
            h.lock ? `${h.lock.owner}${h.lock.expired ? ' (expired)' : ''}` : '',
            [...h.drift, ...h.problems].join('<br>'),
          ]),
        ]),
    );
    if (!report.ok) {
      const bad = report.hosts.filter((h) => !h.healthy);
      throw new LadingError(
        `${bad.length} of ${report.hosts.length} host(s) not healthy: ${bad.map((h) => `${h.host}: ${h.problems.join(', ')}`).join('; ')}`,
      );
    }
    return;
  }
  if (command === 'logs') {
    // an action step cannot be interrupted: no follow, and a bounded tail by default
    const logs = { ...readLogsSettings(readInput), follow: false };
    logs.tail ??= '200';
    const out = { write: (chunk: string) => (process.stdout.write(chunk), true) } as unknown as NodeJS.WritableStream;
    const hosts = await core.group('lading logs', () => runLogsStage({ ...opts, logs, out }));
    const ok = hosts.every((h) => h.code === 0);
    done(ok, hosts);
    if (!ok)
      throw new LadingError(
        `logs failed: ${hosts
          .filter((h) => h.code)
          .map((h) => `${h.host}: ${h.error}`)
          .join('; ')}`,
      );
    return;
  }
  if (command === 'exec') {
    const argv = parseArgv('exec-command', readInput('exec-command'));
    if (argv.length === 0)
      throw new LadingError("input 'exec-command' is empty", 'give the command to run (a JSON array, or words)');
    const exec = readExecSettings(readInput);
    const result = await core.group(`lading exec ${argv.join(' ')}`, () =>
      runExecStage({ ...opts, exec, argv, stdout: process.stdout, stderr: process.stdout }),
    );
    done(result.code === 0, result);
    if (result.code !== 0) {
      const h = result.hosts.find((x) => x.code !== 0)!;
      throw new LadingError(`exec failed on ${h.host} with exit status ${h.code}${h.error ? `: ${h.error}` : ''}`);
    }
    return;
  }
  if (command === 'lock-status' || command === 'lock-release') {
    const release = command === 'lock-release';
    const hosts = await runLockStage({ ...opts, lock: readLockSettings(readInput) }, release);
    const ok = !hosts.some((h) => h.error) && !(release && hosts.some((h) => h.lock && !h.released));
    done(ok, hosts);
    for (const h of hosts) {
      const l = h.lock;
      core.info(
        `${h.host}: ${h.error ?? (l ? `held by ${l.owner} (${l.host}) until ${l.expiresAt}${l.expired ? ' (lease ran out)' : ''}` : 'free')}` +
          (release && l
            ? ` — ${h.released ? 'released' : 'not released'}: ${h.why}${h.hint ? ` (${h.hint})` : ''}`
            : ''),
      );
    }
    if (!ok)
      throw new LadingError(
        `${command}: ${hosts
          .filter((h) => h.error || (h.lock && !h.released))
          .map((h) => `${h.host}: ${h.error ?? h.why}`)
          .join('; ')}`,
      );
    return;
  }
  const hosts = await runPruneStage({ ...opts, prune: readPruneSettings(readInput) });
  const ok = !hosts.some((h) => h.error);
  done(ok, hosts);
  for (const h of hosts) {
    if (!h.plan) {
      core.info(`${h.host}: ${h.error}`);
      continue;
    }
    const p = h.plan;
    core.info(
      `${h.host}: ${p.releases.length} release(s) and ${p.images.length} image(s) ${h.dryRun ? 'would go' : 'removed'}, up to ${formatBytes(p.bytes)}` +
        `${p.releases.length ? `: ${p.releases.map((r) => r.id).join(', ')}` : ''}`,
    );
  }
  if (!ok)
    throw new LadingError(
      `prune failed: ${hosts
        .filter((h) => h.error)
        .map((h) => `${h.host}: ${h.error}`)
        .join('; ')}`,
    );
}
