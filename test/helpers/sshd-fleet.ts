import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { freePort, testEnv } from './testenv.ts';

/** Extra sshd instances on loopback ports: "hosts" of a fleet, all running on this machine and its test dockerd. */
export interface SshdFleet {
  ports: number[];
  /** `root@127.0.0.1:<port>`, one per instance. */
  hosts: string[];
  /** known_hosts lines pinning every instance (the same host keys as the test sshd, under `[127.0.0.1]:<port>`). */
  knownHosts: string;
  stop(): Promise<void>;
}

const answersSsh = (port: number) =>
  new Promise<boolean>((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    sock.setTimeout(1000);
    sock.once('data', (c: Buffer) => {
      sock.destroy();
      resolve(c.toString().startsWith('SSH-'));
    });
    sock.once('error', () => resolve(false));
    sock.once('timeout', () => {
      sock.destroy();
      resolve(false);
    });
  });

/**
 * Starts `n` sshd processes with the test sshd's configuration (host keys, authorized key, DOCKER_HOST of the test
 * dockerd) on free loopback ports. Their pid files sit with the test environment's (`fleet-<port>.pid`), so
 * `scripts/testenv.sh down` stops any a crashed test left behind; `stop()` (and this process's exit) stops them.
 * `path` sets the sessions' PATH (a login shell's rc files may still prepend to it).
 */
export async function startSshdFleet(n: number, opts: { path?: string } = {}): Promise<SshdFleet> {
  const env = testEnv();
  const sshDir = join(env.root, 'ssh');
  const dir = join(sshDir, 'fleet');
  mkdirSync(dir, { recursive: true });
  mkdirSync(join(env.root, 'pids'), { recursive: true });
  let base = readFileSync(join(sshDir, 'sshd_config'), 'utf8');
  // `path`: a PATH for the sessions (a bench puts stand-in docker commands first)
  if (opts.path) base = base.replace(/^SetEnv (.*)$/m, `SetEnv $1 PATH=${opts.path}`);
  const keys = ['host_ed25519.pub', 'host_ecdsa.pub'].map((f) =>
    readFileSync(join(sshDir, f), 'utf8').split(' ').slice(0, 2).join(' '),
  );
  const children: ChildProcess[] = [];
  const ports: number[] = [];
  const files: string[] = [];
  const killAll = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  };
  process.once('exit', killAll);
  try {
    for (let i = 0; i < n; i++) {
      let port = 0;
      let child: ChildProcess | undefined;
      for (let attempt = 0; attempt < 5 && !child; attempt++) {
        port = await freePort();
        const conf = join(dir, `sshd-${port}.conf`);
        writeFileSync(
          conf,
          base
            .replace(/^Port .*$/m, `Port ${port}`)
            .replace(/^PidFile .*$/m, `PidFile ${join(dir, `sshd-${port}.pid`)}`),
        );
        const c = spawn('/usr/sbin/sshd', ['-D', '-f', conf, '-E', join(env.root, 'logs', `fleet-${port}.log`)], {
          stdio: 'ignore',
        });
        const pidFile = join(env.root, 'pids', `fleet-${port}.pid`);
        writeFileSync(pidFile, `${c.pid}\n`);
        files.push(conf, pidFile, join(dir, `sshd-${port}.pid`));
        let up = false;
        for (let t = 0; t < 100 && !up && c.exitCode === null; t++) {
          up = await answersSsh(port);
          if (!up) await new Promise((r) => setTimeout(r, 50));
        }
        if (up) child = c;
        else c.kill('SIGTERM'); // lost the port to someone else: try another one
      }
      if (!child) throw new Error(`sshd did not start for the fleet (see ${env.root}/logs/fleet-${port}.log)`);
      children.push(child);
      ports.push(port);
    }
  } catch (err) {
    killAll();
    throw err;
  }
  return {
    ports,
    hosts: ports.map((p) => `root@127.0.0.1:${p}`),
    knownHosts: ports.flatMap((p) => keys.map((k) => `[127.0.0.1]:${p} ${k}`)).join('\n') + '\n',
    stop: async () => {
      process.removeListener('exit', killAll);
      await Promise.all(
        children.map(
          (c) =>
            new Promise<void>((resolve) => {
              if (c.exitCode !== null || c.signalCode !== null) return resolve();
              c.once('exit', () => resolve());
              c.kill('SIGTERM');
            }),
        ),
      );
      for (const f of files) rmSync(f, { force: true });
    },
  };
}
