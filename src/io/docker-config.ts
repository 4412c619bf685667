import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { LadingError } from '../lib/errors.ts';
import { credentialHelperServer, dockerConfigKeys, type RegistryProvider } from '../lib/registry.ts';
import { retry } from '../lib/retry.ts';
import { capture, type ExecResult } from './exec.ts';
import type { RegistryCredential } from './registry-auth.ts';

export interface DockerConfigOptions {
  /** The docker CLI (default `docker` on PATH). */
  docker?: string;
  /** Extra environment for docker (DOCKER_HOST …), on top of process.env. */
  env?: Record<string, string>;
  /** Where the temp config folder goes (default RUNNER_TEMP, else the OS temp dir). */
  tmpDir?: string;
}

/**
 * The config.json a fresh folder starts with. Without any auth entry the docker CLI looks for a platform
 * credential helper (docker-credential-pass / -secretservice on Linux) and, when one is installed, stores the login
 * in the user's keyring — outside the temp folder, surviving it. An auth entry with no secret for a host that
 * cannot exist switches that detection off, so logins land in this folder and go with it.
 */
const SEED_CONFIG = JSON.stringify({ auths: { 'lading.invalid': {} } }, null, 2);

function scrub(text: string, secrets: string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join('***');
  return out.trim();
}

const TRANSIENT_LOGIN =
  /timeout|timed out|connection refused|connection reset|EOF|TLS handshake|no such host|Service Unavailable|Bad Gateway|Gateway Timeout|\b50[234]\b/i;

class TransientLoginError extends Error {
  constructor(readonly result: ExecResult) {
    super('docker login failed on a network error');
  }
}

async function login(docker: string, dir: string, cred: RegistryCredential, env: Record<string, string>) {
  if (cred.expiresAt && cred.expiresAt.getTime() <= Date.now()) {
    throw new LadingError(
      `the credential for ${cred.host} expired at ${cred.expiresAt.toISOString()}`,
      'get a fresh one (re-run the step; long jobs should log in right before pushing)',
    );
  }
  // The password goes on stdin only, never into argv (visible in `ps`) or a file we write.
  const args = ['--config', dir, 'login', cred.host, '--username', cred.username, '--password-stdin'];
  let res: ExecResult;
  try {
    res = await retry(
      async () => {
        const r = await capture(docker, args, { env, input: Buffer.from(cred.password, 'utf8') });
        if (r.code !== 0 && TRANSIENT_LOGIN.test(r.stderr)) throw new TransientLoginError(r);
        return r;
      },
      { tries: 3, baseMs: 500, isRetryable: (err) => err instanceof TransientLoginError },
    );
  } catch (err) {
    if (!(err instanceof TransientLoginError)) throw err;
    res = err.result;
  }
  if (res.code !== 0) {
    const detail = scrub(res.stderr || res.stdout, [cred.password]) || `exit code ${res.code}`;
    const unauthorized = /unauthorized|denied|401|authentication required|incorrect username or password/i.test(detail);
    throw new LadingError(
      `docker login to ${cred.host} as ${cred.username} failed: ${detail}`,
      unauthorized
        ? `the registry refused the credentials: check them (and their expiry) for ${cred.host}`
        : `check that ${cred.host} is reachable from the docker daemon and serves the registry API`,
    );
  }
}

/**
 * Runs `fn` with a private docker config folder (0700, under RUNNER_TEMP or the OS temp dir) where docker is
 * logged in to every registry of `creds` through `docker login --password-stdin`. The folder, and with it every
 * credential, is removed when `fn` settles, whether it succeeded or failed. Pass the folder to docker as
 * `docker --config <dir> …` (or DOCKER_CONFIG=<dir>).
 */
export async function withDockerConfig<T>(
  creds: RegistryCredential[],
  fn: (configDir: string) => Promise<T>,
  opts: DockerConfigOptions = {},
): Promise<T> {
  const docker = opts.docker ?? 'docker';
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  Object.assign(env, opts.env);
  delete env.DOCKER_CONFIG; // --config wins anyway; keep the user's folder out of reach
  const base = opts.tmpDir || process.env.RUNNER_TEMP || tmpdir();
  const dir = await mkdtemp(join(base, 'lading-docker-config-'));
  try {
    await chmod(dir, 0o700);
    await writeFile(join(dir, 'config.json'), `${SEED_CONFIG}\n`, { mode: 0o600 });
    const byHost = new Map<string, RegistryCredential>();
    for (const c of creds) byHost.set(c.host, c);
    for (const cred of byHost.values()) await login(docker, dir, cred, env);
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface DockerConfigFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

/** The runner's own docker config folder: DOCKER_CONFIG, else ~/.docker. */
export function userDockerConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker');
}

/**
 * The login the runner's own docker config already holds for `host` — what docker/login-action,
 * aws-actions/amazon-ecr-login or `gcloud auth configure-docker` left: an `auths` entry, or a credential helper
 * (`credHelpers` for the host, else `credsStore`) asked through `docker-credential-<name> get`. Undefined when there
 * is none (anonymous access). Identity tokens (OAuth refresh tokens) cannot be replayed with a password: skipped.
 */
export async function existingCredential(
  host: string,
  provider: RegistryProvider,
  opts: { env?: NodeJS.ProcessEnv; log?: (line: string) => void; mask: (secret: string) => void },
): Promise<RegistryCredential | undefined> {
  const env = opts.env ?? process.env;
  const file = join(userDockerConfigDir(env), 'config.json');
  let config: DockerConfigFile;
  try {
    config = JSON.parse(await readFile(file, 'utf8')) as DockerConfigFile;
  } catch {
    return undefined;
  }
  const keys = dockerConfigKeys(host);
  const helper = keys.map((k) => config.credHelpers?.[k]).find(Boolean);
  if (!helper) {
    for (const key of keys) {
      const entry = config.auths?.[key];
      if (!entry) continue;
      if (entry.identitytoken) {
        opts.log?.(
          `registry ${host}: ${file} holds an identity token, which lading cannot replay; log in with a password`,
        );
        return undefined;
      }
      let username = entry.username ?? '';
      let password = entry.password ?? '';
      if (entry.auth) {
        const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon > 0) [username, password] = [decoded.slice(0, colon), decoded.slice(colon + 1)];
      }
      if (username && password) {
        opts.mask(password);
        opts.log?.(`registry ${host}: using the login in ${file} (${username})`);
        return { host, username, password, provider };
      }
    }
  }
  const store = helper ?? config.credsStore;
  if (!store) return undefined;
  if (!/^[\w.-]+$/.test(store)) throw new LadingError(`${file} names an invalid credential helper '${store}'`);
  const res = await capture(`docker-credential-${store}`, ['get'], {
    env: Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined)),
    input: Buffer.from(credentialHelperServer(host), 'utf8'),
  }).catch(() => undefined);
  if (!res) {
    opts.log?.(
      `registry ${host}: ${file} names the credential helper docker-credential-${store}, which is not installed`,
    );
    return undefined;
  }
  if (res.code !== 0) return undefined; // "credentials not found in native keychain"
  try {
    const out = JSON.parse(res.stdout) as { Username?: string; Secret?: string };
    if (!out.Username || !out.Secret || out.Username === '<token>') return undefined;
    opts.mask(out.Secret);
    opts.log?.(`registry ${host}: using docker-credential-${store} (${out.Username})`);
    return { host, username: out.Username, password: out.Secret, provider };
  } catch {
    throw new LadingError(
      `docker-credential-${store} answered something other than JSON for ${host}`,
      'check the helper with: echo <host> | docker-credential-<name> get',
    );
  }
}
