import * as core from '@actions/core';
import { GitHubDeployment } from '../../io/github-deployments.ts';
import { describeError, LadingError } from '../../lib/errors.ts';
import { readInputs } from '../../lib/input-values.ts';
import type { Manifest } from '../../lib/manifest.ts';
import { sshConnector } from '../../io/ssh-connector.ts';
import { loadManifest } from '../../settings/deploy.ts';
import { readHostSettings, readMaintenanceSettings } from '../../settings/host.ts';
import type { DeployResult } from '../../stages/host/types.ts';
import { runMaintenanceStage } from '../../stages/deploy.ts';
import { stagesFor } from '../../stages/targets.ts';
import { coreReporter } from '../reporter.ts';
import { inputReader, runAction, writeSummary } from '../run.ts';
import { isOpsCommand, runOpsCommand } from './ops.ts';
import { hostDeps } from '../../stages/host/deps.ts';

const readInput = inputReader('deploy');

await runAction(async () => {
  const { command } = readInputs(readInput, ['command']);
  // with a GitHub Deployment the manifest is read first, once: the deployment describes it and the stage deploys it
  const token = command === 'deploy' ? readInputs(readInput, ['github-token'])['github-token'] : undefined;
  const manifest = command === 'deploy' ? await loadManifest(readInput) : undefined;
  // every input parsed once, here: the stages get typed settings
  const settings = await readHostSettings(readInput, process.env);
  const opts = { settings, reporter: coreReporter, deps: hostDeps(sshConnector) };
  if (isOpsCommand(command)) return runOpsCommand(command, opts); // status, logs, exec, lock-*, prune
  const stages = stagesFor(settings.target); // compose hosts, or a swarm through a manager
  if (command === 'releases') {
    const hosts = await stages.releases(opts);
    core.setOutput('hosts', JSON.stringify(hosts));
    await writeSummary((s) =>
      s.addHeading('lading: releases', 3).addTable([
        [
          { data: 'host', header: true },
          { data: 'current', header: true },
          { data: 'last deploys', header: true },
        ],
        ...hosts.map((h) => [
          h.host,
          h.current ?? h.error ?? '',
          h.history
            .slice(-3)
            .map((e) => `${e.time} ${e.action} ${e.primary} ${e.result}${e.actor ? ` by ${e.actor}` : ''}`)
            .join('<br>'),
        ]),
      ]),
    );
    for (const h of hosts) core.info(`${h.host}: current ${h.current ?? '(none)'}; ${h.releases.length} release(s)`);
    return;
  }
  if (command === 'maintenance') {
    const result = await runMaintenanceStage({ ...opts, maintenance: await readMaintenanceSettings(readInput) });
    core.setOutput('hosts', JSON.stringify(result.hosts));
    core.setOutput('status', result.ok ? 'success' : 'failure');
    const failed = result.hosts.filter((h) => h.status !== 'deployed');
    if (failed.length) {
      throw new LadingError(
        `maintenance ${result.release} failed on ${failed.map((h) => `${h.host}: ${h.error ?? h.status}`).join('; ')}`,
      );
    }
    core.info(`maintenance ${result.release} on ${result.hosts.length} host(s)`);
    return;
  }
  const deployment = token && manifest ? await startDeployment(token, manifest) : undefined;
  let result: DeployResult;
  try {
    // the manifest is read for command deploy only: without one this is a rollback
    result = manifest ? await stages.deploy({ ...opts, manifest }) : await stages.rollback(opts);
  } catch (err) {
    await deployment
      ?.status('error', describeError(err))
      .catch((e) => core.warning(`GitHub deployment status: ${describeError(e)}`));
    throw err;
  }
  await deployment
    ?.status(
      result.ok ? 'success' : 'failure',
      `${result.release}: ${result.hosts.map((h) => `${h.host} ${h.status}`).join(', ')}`,
    )
    .catch((e) => core.warning(`GitHub deployment status: ${describeError(e)}`));
  core.setOutput('release', result.release);
  core.setOutput('previous-release', result.hosts.find((h) => h.previous)?.previous ?? '');
  core.setOutput('hosts', JSON.stringify(result.hosts));
  core.setOutput('status', result.ok ? 'success' : 'failure');
  await writeSummary((s) =>
    s.addHeading(`lading: ${command} ${result.release}`, 3).addTable([
      [
        { data: 'host', header: true },
        { data: 'result', header: true },
        { data: 'release', header: true },
        { data: 'before', header: true },
        { data: 'seconds', header: true },
        { data: 'error', header: true },
      ],
      ...result.hosts.map((h) => [
        h.host,
        h.status,
        h.release ?? '',
        h.previous ?? '',
        String(h.seconds),
        h.error ?? '',
      ]),
    ]),
  );
  if (!result.ok) {
    const failed = result.hosts.filter((h) => h.status !== 'deployed');
    const hook = result.hooks?.find((h) => !h.ok);
    if (failed.length === 0 && hook)
      throw new LadingError(`${command}: hook ${hook.hook} failed on ${hook.host}: ${hook.error}`);
    throw new LadingError(
      `${command} failed on ${failed.length} of ${result.hosts.length} host(s):\n${failed.map((h) => `  ${h.host}: ${h.status}${h.error ? ` — ${h.error}` : ''}`).join('\n')}`,
    );
  }
});

/** A GitHub Deployment of the manifest (github-token given), with the environment and URL inputs. */
async function startDeployment(token: string, manifest: Manifest): Promise<GitHubDeployment | undefined> {
  const { environment, 'environment-url': environmentUrl } = readInputs(readInput, ['environment', 'environment-url']);
  core.setSecret(token);
  const server = process.env.GITHUB_SERVER_URL || 'https://github.com';
  const repository = process.env.GITHUB_REPOSITORY || manifest.source.repository;
  try {
    const d = await GitHubDeployment.create({
      token,
      apiUrl: process.env.GITHUB_API_URL || 'https://api.github.com',
      repository,
      ref: manifest.source.sha,
      environment,
      environmentUrl,
      logUrl: process.env.GITHUB_RUN_ID
        ? `${server}/${repository}/actions/runs/${process.env.GITHUB_RUN_ID}`
        : manifest.source.run,
      description: `lading deploy of ${manifest.primary}`,
      payload: { primary: manifest.primary, tags: manifest.tags, images: manifest.images.map((i) => i.ref) },
    });
    await d.status('in_progress', `deploying ${manifest.primary}`);
    core.info(`GitHub deployment ${d.id} (${environment})`);
    return d;
  } catch (err) {
    core.warning(`could not create a GitHub deployment (the deploy goes on): ${describeError(err)}`);
    return undefined;
  }
}
