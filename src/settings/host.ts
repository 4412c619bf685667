import { InputError } from '../lib/errors.ts';
import { HOOK_NAMES, type HookInputs } from '../lib/hooks.ts';
import { readInputs, type InputReader } from '../lib/input-values.ts';
import type { Manifest } from '../lib/manifest.ts';
import { parseProxySettings, parseRollingInput } from '../lib/proxy.ts';
import type { ImageFetch } from '../stages/host/images.ts';
import type { HostSettings, MaintenanceSettings, ShippingSettings } from '../stages/host/types.ts';
import type { RollingSettings } from '../stages/rolling.ts';
import { parseStoreOptions } from './common.ts';
import { loadManifest, readDeploySettings, readText } from './deploy.ts';
import { readSwarmSettings, readTarget } from './swarm.ts';

export type { HostSettings, MaintenanceSettings, ShippingSettings } from '../stages/host/types.ts';

/**
 * The typed settings of every host-facing stage (deploy, rollback, releases, maintenance and the day-2 verbs; compose
 * and swarm), parsed once at the edge (the deploy action, a CLI command, the agent's config): the stages never see a
 * raw input.
 */

export function readRollingSettings(read: InputReader): RollingSettings {
  return { input: parseRollingInput(readInputs(read, ['rolling']).rolling), proxy: parseProxySettings(read) };
}

export function readShippingSettings(read: InputReader): ShippingSettings {
  return { store: parseStoreOptions(read), fetch: readInputs(read, ['image-fetch'])['image-fetch'] as ImageFetch };
}

/** The hook inputs (commands as given: their argv is parsed beside the manifest's x-lading, see src/lib/hooks.ts). */
export function readHookInputs(read: InputReader): HookInputs {
  const v = readInputs(read, [...HOOK_NAMES, 'hook-service', 'hook-timeout', 'runner-hook']);
  const h: HookInputs = { commands: {} };
  for (const name of HOOK_NAMES) if (v[name]) h.commands[name] = v[name];
  if (v['hook-service']) h.service = v['hook-service'];
  // given: it wins over x-lading's timeout; not given: x-lading's, else the table's default
  if (read('hook-timeout')) h.timeout = v['hook-timeout'];
  if (v['runner-hook']) h.runnerHook = v['runner-hook'];
  return h;
}

/** Everything a host stage needs, for the target the `target` input names. */
export async function readHostSettings(
  read: InputReader,
  env: Record<string, string | undefined>,
  where: { local?: boolean } = {},
): Promise<HostSettings> {
  const target = readTarget(read);
  const swarm = target === 'swarm' ? await readSwarmSettings(read, env) : undefined;
  const deploy = swarm ? swarm.deploy : await readDeploySettings(read, env, where);
  return {
    target,
    deploy,
    ...(swarm && { swarm }),
    rolling: readRollingSettings(read),
    shipping: readShippingSettings(read),
    hooks: readHookInputs(read),
    rollbackTo: readInputs(read, ['to']).to,
  };
}

/** A deploy's settings and the manifest it deploys (read once, here: the manifest input, a path, URL or store). */
export async function readDeployInputs(
  read: InputReader,
  env: Record<string, string | undefined>,
): Promise<{ settings: HostSettings; manifest: Manifest }> {
  const manifest = await loadManifest(read);
  return { settings: await readHostSettings(read, env), manifest };
}

export async function readMaintenanceSettings(read: InputReader): Promise<MaintenanceSettings> {
  const mode = readInputs(read, ['maintenance']).maintenance;
  if (mode !== 'on' && mode !== 'off') throw new InputError('maintenance', `'${mode ?? ''}' is not on or off`);
  if (mode === 'off') return { on: false };
  const page = await readText(read, 'maintenance-page');
  return page === undefined ? { on: true } : { on: true, page };
}
