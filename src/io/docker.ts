import { LadingError } from '../lib/errors.ts';
import { capture, stream } from './exec.ts';

export type Log = (line: string) => void;

export interface DockerFeatures {
  buildx: boolean;
  /** The docker client's version (clients before 23 have a built-in BuildKit; later ones need buildx for it). */
  clientVersion?: string;
  /** How compose is invoked on this machine, if at all. */
  compose?: { command: string[]; version: string };
  serverVersion: string;
}

/** The docker CLI, with an optional private config dir (credentials) and environment. */
export class Docker {
  constructor(readonly opts: { bin?: string; env?: NodeJS.ProcessEnv; configDir?: string; log: Log; cwd?: string }) {}

  /** The same CLI with a private config dir (credentials) and, optionally, extra environment. */
  withConfig(configDir: string, env: Record<string, string> = {}): Docker {
    return new Docker({ ...this.opts, configDir, env: { ...(this.opts.env ?? process.env), ...env } });
  }

  private base(args: string[]): string[] {
    return this.opts.configDir ? ['--config', this.opts.configDir, ...args] : args;
  }

  private env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return { ...(this.opts.env ?? process.env), ...extra };
  }

  /** Runs docker quietly and returns stdout; failure is a LadingError with docker's own message. */
  async run(args: string[], what: string, opts: { input?: string; hint?: string } = {}): Promise<string> {
    const res = await capture(this.opts.bin ?? 'docker', this.base(args), {
      env: this.env() as Record<string, string>,
      cwd: this.opts.cwd,
      input: opts.input === undefined ? undefined : Buffer.from(opts.input),
    });
    if (res.code !== 0) {
      throw new LadingError(`${what} failed: ${lastLines(res.stderr || res.stdout)}`, opts.hint);
    }
    return res.stdout.trim();
  }

  /** Runs docker with its output streamed into the log. */
  async streamed(args: string[], env: Record<string, string> = {}) {
    return stream(this.opts.bin ?? 'docker', this.base(args), {
      env: this.env(env),
      cwd: this.opts.cwd,
      onLine: this.opts.log,
    });
  }

  async features(): Promise<DockerFeatures> {
    const bin = this.opts.bin ?? 'docker';
    const env = this.env() as Record<string, string>;
    let server: Awaited<ReturnType<typeof capture>>;
    try {
      server = await capture(bin, ['version', '--format', '{{.Server.Version}}'], { env });
    } catch {
      throw new LadingError(
        'the docker CLI is not installed',
        'install Docker on the runner (GitHub-hosted runners have it)',
      );
    }
    if (server.code !== 0 || !server.stdout.trim()) {
      throw new LadingError(
        `cannot reach the Docker engine: ${lastLines(server.stderr)}`,
        'start Docker, or set DOCKER_HOST to a running engine',
      );
    }
    const [client, buildx, v2, v1] = await Promise.all([
      capture(bin, ['version', '--format', '{{.Client.Version}}'], { env }),
      capture(bin, ['buildx', 'version'], { env }),
      capture(bin, ['compose', 'version', '--short'], { env }),
      capture('docker-compose', ['version', '--short'], { env }).catch(() => ({ code: 127, stdout: '', stderr: '' })),
    ]);
    const features: DockerFeatures = { buildx: buildx.code === 0, serverVersion: server.stdout.trim() };
    const clientVersion = client.stdout.trim().split('\n')[0];
    if (clientVersion) features.clientVersion = clientVersion;
    if (v2.code === 0) features.compose = { command: [bin, 'compose'], version: v2.stdout.trim() };
    else if (v1.code === 0) features.compose = { command: ['docker-compose'], version: v1.stdout.trim() };
    return features;
  }

  async imageId(ref: string): Promise<string | undefined> {
    const res = await capture(this.opts.bin ?? 'docker', this.base(['image', 'inspect', '--format', '{{.Id}}', ref]), {
      env: this.env() as Record<string, string>,
    });
    return res.code === 0 ? res.stdout.trim() : undefined;
  }

  async tag(source: string, target: string): Promise<void> {
    await this.run(['tag', source, target], `docker tag ${source} ${target}`);
  }
}

/** The last few meaningful lines of a command's output, for an error message. */
export function lastLines(text: string, n = 6): string {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trimEnd())
    .filter(Boolean);
  return lines.slice(-n).join('\n') || '(no output)';
}
