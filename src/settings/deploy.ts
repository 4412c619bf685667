import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { readManifestFrom } from '../io/manifest-source.ts';
import {
  checkProbeUrl,
  checkProject,
  checkRoot,
  type HostSpec,
  parseHosts,
  parseInventory,
  parseMaxFailures,
} from '../lib/deploy-plan.ts';
import { parsePolicyAllow, type PolicyMode } from '../lib/compose-policy.ts';
import { parseDotEnv } from '../lib/compose-interpolate.ts';
import { InputError } from '../lib/errors.ts';
import { checkEnvName } from '../lib/inputs.ts';
import { readInputs } from '../lib/input-values.ts';
import type { Manifest } from '../lib/manifest.ts';
import { parseProviderOverrides } from '../lib/registry.ts';
import type { InputReader } from '../lib/tag-settings.ts';
import { readManifestLimits } from './common.ts';
import { readRegistryAuth } from './registry.ts';
import { parseStoreOptions } from './common.ts';

export type { SshSettings } from '../io/host-session.ts';

import type { DeploySettings } from '../stages/host/types.ts';

export type { DeploySettings } from '../stages/host/types.ts';

/** An input that holds a text or a path to a file with it (keys, known_hosts, inventory, pages). */
export async function readText(read: InputReader, name: string): Promise<string | undefined> {
  const v = read(name);
  if (!v) return undefined;
  if (v.includes('\n') || v.trimStart().startsWith('-----') || v.includes(' ')) return v;
  try {
    return await readFile(v, 'utf8'); // a path to the file
  } catch {
    return v;
  }
}

/**
 * The deploy's compose-env values: the env files' in order, then the compose-env pairs on top. Every name is checked
 * here, before any host: the release's .env holds variable names only. `fileInput` names the files' input in errors
 * (the agent's deploy.env-file).
 */
export async function readComposeEnv(
  pairs: Array<[string, string]>,
  files: string[],
  fileInput = 'compose-env-file',
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of files) {
    const text = await readFile(f, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new InputError(
        fileInput,
        `${f} cannot be read (${err.code ?? err.message})`,
        'give the path of an env file (KEY=VALUE lines) this deploy can read',
      );
    });
    for (const [k, value] of Object.entries(parseDotEnv(text, {}, f))) out[checkEnvName(fileInput, k, f)] = value;
  }
  for (const [k, value] of pairs) out[checkEnvName('compose-env', k)] = value;
  return out;
}

/**
 * The deploy's settings. `local`: the host is this machine (the agent, a pull-mode host looking at itself), reached
 * through a local shell: the one host is `localhost`, and no SSH input is needed.
 */
export async function readDeploySettings(
  read: InputReader,
  env: Record<string, string | undefined>,
  where: { local?: boolean } = {},
): Promise<DeploySettings> {
  const local = !!where.local;
  const privateKey = local ? '' : await readText(read, 'ssh-key');
  if (!local && !privateKey)
    throw new InputError('ssh-key', 'is empty', 'pass the private key (its text, or a file path)');
  const knownHosts = local ? '' : ((await readText(read, 'known-hosts')) ?? '');
  // defaults and bounds come from the table of inputs (src/lib/input-table.ts)
  const v = readInputs(read, [
    'insecure-ignore-host-key',
    'root',
    'project',
    'ssh-port',
    'ssh-user',
    'jump-host',
    'keep-releases',
    'prune-images',
    'compose-secrets',
    'deploy-compose-env',
    'deploy-compose-env-file',
    'lock-ttl',
    'lock-wait',
    'health-timeout',
    'health-stable',
    'step-timeout',
    'max-parallel',
    'fail-fast',
    'canary',
    'rollback',
    'allow-downgrade',
    'run-id',
  ]);
  const insecure = v['insecure-ignore-host-key'];
  if (!local && !knownHosts.trim() && !insecure) {
    throw new InputError(
      'known-hosts',
      'is empty: lading pins host keys and will not connect to an unknown host',
      'pass known_hosts lines (ssh-keyscan -p PORT HOST prints them; check them out of band)',
    );
  }
  const root = checkRoot('root', v.root);
  const project = v.project && checkProject('project', v.project);
  const ssh: DeploySettings['ssh'] = { privateKey: privateKey ?? '', knownHosts, insecureIgnoreHostKey: insecure };
  const passphrase = read('ssh-passphrase'); // as given: a passphrase may have spaces at either end
  if (passphrase) ssh.passphrase = passphrase;
  const port = v['ssh-port'];
  const user = v['ssh-user'];
  const jump = v['jump-host'];
  if (jump && !local) {
    const [j] = parseHosts(jump, { user, port: 22 });
    ssh.jump = {
      host: j!.host,
      port: j!.port,
      user: j!.user,
      privateKey: ssh.privateKey,
      knownHosts,
      insecureIgnoreHostKey: insecure,
    };
    if (passphrase) ssh.jump.passphrase = passphrase;
  }
  const auth = readRegistryAuth(read);
  const settings: DeploySettings = {
    hosts: local ? [{ label: 'localhost', host: 'localhost', port, user }] : await hostsFrom(read, { user, port }),
    ssh,
    root,
    keep: v['keep-releases'],
    pruneImages: v['prune-images'],
    composeSecrets: Object.fromEntries(
      v['compose-secrets'].map(([k, value]) => [checkEnvName('compose-secrets', k), value]),
    ),
    composeEnv: await readComposeEnv(v['deploy-compose-env'], v['deploy-compose-env-file']),
    lockTtl: v['lock-ttl'],
    lockWait: v['lock-wait'],
    healthTimeout: v['health-timeout'],
    healthStable: v['health-stable'],
    stepTimeoutMs: v['step-timeout'] * 1000,
    maxParallel: v['max-parallel'],
    failFast: v['fail-fast'],
    maxFailures: 0,
    canary: v.canary,
    rollbackOnFailure: v.rollback,
    allowDowngrade: v['allow-downgrade'],
    composePolicy: readComposePolicy(read),
    ...ownerOf(v['run-id'], env),
    auth,
    overrides: parseProviderOverrides(read('registry-providers')),
  };
  settings.maxFailures = parseMaxFailures(read('max-failures'), settings.hosts.length, settings.failFast);
  if (project) settings.project = project;
  const probe = read('probe-url');
  if (probe) settings.probeUrl = checkProbeUrl('probe-url', probe);
  return settings;
}

/** The deploy's owner (history `run`, lock holder): the run id, else the CI run, else the process; and a lock token
 * unique to this deploy. */
export function ownerOf(
  runId: string | undefined,
  env: Record<string, string | undefined>,
): Pick<DeploySettings, 'owner' | 'lockOwner'> {
  const owner = (
    runId ?? (env.GITHUB_RUN_ID ? `gh-${env.GITHUB_RUN_ID}.${env.GITHUB_RUN_ATTEMPT ?? 1}` : `pid-${process.pid}`)
  ).replace(/[^A-Za-z0-9._-]/g, '_');
  return { owner, lockOwner: `${owner}-${randomBytes(4).toString('hex')}` };
}

async function hostsFrom(read: InputReader, defaults: { user: string; port: number }): Promise<HostSpec[]> {
  const inventory = await readText(read, 'inventory');
  const hosts = [
    ...(read('hosts') ? parseHosts(read('hosts'), defaults) : []),
    ...(inventory ? parseInventory(inventory, defaults) : []),
  ];
  if (hosts.length === 0) throw new InputError('hosts', 'no host given', 'list hosts, or pass an inventory');
  const seen = new Set<string>();
  for (const h of hosts) {
    const key = `${h.user}@${h.host}:${h.port}/${h.root ?? ''}/${h.project ?? ''}`;
    if (seen.has(key)) throw new InputError('hosts', `${h.label} is listed twice`);
    seen.add(key);
  }
  return hosts;
}

export async function loadManifest(read: InputReader): Promise<Manifest> {
  return readManifestFrom('manifest', read('manifest'), {
    storeOptions: parseStoreOptions(read),
    ...readManifestLimits(read),
  });
}

/** compose-policy and compose-policy-allow (deploy and manifest). */
export function readComposePolicy(read: InputReader): DeploySettings['composePolicy'] {
  const v = readInputs(read, ['compose-policy', 'compose-policy-allow']);
  return { mode: v['compose-policy'] as PolicyMode, allow: parsePolicyAllow(v['compose-policy-allow'] ?? []) };
}
