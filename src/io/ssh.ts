import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import ssh2, { type ClientChannel, type ConnectConfig, type SFTPWrapper } from 'ssh2';
import { InputError, LadingError } from '../lib/errors.ts';
import { checkHostKey, fingerprint, hostKeyName, keysFor, keyTypeOf, parseKnownHosts } from '../lib/known-hosts.ts';
import { envAssignments } from '../lib/shell.ts';
import { type PtyRequest, type RemoteProcess, SCRIPT_PATH_RE } from './remote-process.ts';
import type { ShellProcess } from './step-shell.ts';

export interface SshTarget {
  host: string;
  port?: number;
  user: string;
  /** OpenSSH or PEM private key text. */
  privateKey: string;
  passphrase?: string;
  /** known_hosts text: the host must be in it with the key it presents. */
  knownHosts: string;
  /** Explicit, loudly logged opt-out of host key pinning. */
  insecureIgnoreHostKey?: boolean;
  jump?: Omit<SshTarget, 'jump'>;
  connectTimeoutMs?: number;
  keepaliveIntervalMs?: number;
}

export interface ExecOptions {
  env?: Record<string, string>;
  timeoutMs?: number;
  onStdout?: (chunk: string) => void;
  onStderr?: (chunk: string) => void;
}

interface Logger {
  log: (line: string) => void;
  warn: (line: string) => void;
}

// The host key algorithms that carry each known_hosts key type, so the server is asked for a key we can check.
const HOST_KEY_ALGOS: Record<string, string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

function checkPrivateKey(target: Omit<SshTarget, 'jump'>): void {
  const parsed = ssh2.utils.parseKey(target.privateKey, target.passphrase);
  if (parsed instanceof Error) {
    const encrypted = /encrypted|passphrase/i.test(parsed.message);
    throw new InputError(
      encrypted ? 'ssh-passphrase' : 'ssh-key',
      encrypted
        ? `the private key needs a passphrase, or the one given is wrong (${parsed.message})`
        : `the private key cannot be read: ${parsed.message}`,
      encrypted
        ? 'pass the key’s passphrase in ssh-passphrase'
        : 'pass the whole private key file (OpenSSH or PEM), including its BEGIN/END lines',
    );
  }
}

function connectOne(
  target: Omit<SshTarget, 'jump'>,
  logger: Logger,
  sock?: NodeJS.ReadableStream,
): Promise<ssh2.Client> {
  checkPrivateKey(target);
  const port = target.port ?? 22;
  const where = hostKeyName(target.host, port);
  const entries = parseKnownHosts(target.knownHosts);
  const known = keysFor(entries, target.host, port).filter((e) => !e.marker);
  let refusal: LadingError | undefined;
  const config: ConnectConfig = {
    host: target.host,
    port,
    username: target.user,
    privateKey: target.privateKey,
    readyTimeout: target.connectTimeoutMs ?? 20_000,
    keepaliveInterval: target.keepaliveIntervalMs ?? 15_000,
    keepaliveCountMax: 4,
    hostVerifier: (key: Buffer) => {
      if (target.insecureIgnoreHostKey) {
        logger.warn(
          `HOST KEY NOT CHECKED for ${where} (insecure-ignore-host-key): accepted ${keyTypeOf(key)} ${fingerprint(key)}. Pin it: add it to known-hosts.`,
        );
        return true;
      }
      const check = checkHostKey(entries, target.host, port, key);
      if (check.ok) return true;
      const got = `${keyTypeOf(key)} ${fingerprint(key)}`;
      refusal =
        check.reason === 'unknown-host'
          ? new LadingError(
              `no known_hosts entry for ${where}: refusing to connect (the server offered ${got})`,
              `add the host's key to known-hosts (ssh-keyscan -p ${port} ${target.host} prints it; check it out of band)`,
            )
          : check.reason === 'revoked'
            ? new LadingError(`the host key of ${where} is marked @revoked in known_hosts (${got})`)
            : new LadingError(
                `host key of ${where} does not match known_hosts (got ${got}, expected ${check.expected.join(' or ')}): refusing to connect`,
                `if the host was really re-keyed, update known-hosts (ssh-keyscan -p ${port} ${target.host}); otherwise someone may be in the middle`,
              );
      return false;
    },
  };
  if (target.passphrase) config.passphrase = target.passphrase;
  if (sock) config.sock = sock as ConnectConfig['sock'];
  if (!target.insecureIgnoreHostKey && known.length > 0) {
    const algos = [...new Set(known.flatMap((e) => HOST_KEY_ALGOS[e.keyType] ?? [e.keyType]))];
    config.algorithms = { serverHostKey: algos as never };
  }
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    client.once('ready', () => resolve(client));
    client.once('error', (err: Error & { level?: string }) => {
      client.end();
      if (refusal) return reject(refusal);
      if (err.level === 'client-authentication') {
        return reject(
          new LadingError(
            `${target.user}@${where} refused the key (authentication failed)`,
            `check that the public key of ssh-key is in ~${target.user}/.ssh/authorized_keys on the host`,
          ),
        );
      }
      if (err.level === 'client-timeout') {
        return reject(new LadingError(`connecting to ${where} timed out`, 'check the host, port and firewall'));
      }
      reject(new LadingError(`cannot connect to ${where}: ${err.message}`, 'check the host, port and that sshd runs'));
    });
    client.connect(config);
  });
}

export class SshSession {
  private sftpP: Promise<SFTPWrapper> | undefined;

  constructor(
    private readonly client: ssh2.Client,
    readonly label: string,
    /** Lets go of the jump host connection this session rode on (shared, see JumpHosts). */
    private readonly release?: () => void,
  ) {}

  /**
   * Runs a script with /bin/sh on the host. The command the login shell sees is the fixed `/bin/sh -s`; the
   * script and every value (as `export NAME='…'` lines) travel on stdin, so no login shell (fish, zsh) and no
   * hostile value changes what runs.
   */
  exec(script: string, opts: ExecOptions = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    const input = `${envAssignments(opts.env ?? {})}\n${script}\n`;
    return new Promise((resolve, reject) => {
      this.client.exec('/bin/sh -s', (err: Error | undefined, channel: ClientChannel) => {
        if (err) return reject(new LadingError(`${this.label}: cannot start a remote command: ${err.message}`));
        let stdout = '';
        let stderr = '';
        let code: number | undefined;
        let signal: string | undefined;
        let timedOut = false;
        const timer = opts.timeoutMs
          ? setTimeout(() => {
              timedOut = true;
              channel.signal('KILL');
              channel.close();
            }, opts.timeoutMs)
          : undefined;
        channel.on('data', (c: Buffer) => {
          stdout += c.toString('utf8');
          opts.onStdout?.(c.toString('utf8'));
        });
        channel.stderr.on('data', (c: Buffer) => {
          stderr += c.toString('utf8');
          opts.onStderr?.(c.toString('utf8'));
        });
        channel.on('exit', (c: number | null, s?: string) => {
          if (typeof c === 'number') code = c;
          if (s) signal = s;
        });
        channel.on('close', () => {
          if (timer) clearTimeout(timer);
          if (timedOut) {
            return reject(
              new LadingError(`${this.label}: remote step timed out after ${Math.round(opts.timeoutMs! / 1000)}s`),
            );
          }
          if (code === undefined) {
            // no exit status: the command was killed or the connection dropped — never a success
            stderr += `\n${signal ? `killed by signal ${signal}` : 'the remote command ended without an exit status'}`;
            return resolve({ code: -1, stdout, stderr });
          }
          resolve({ code, stdout, stderr });
        });
        channel.end(input);
      });
    });
  }

  /**
   * A long-lived `/bin/sh -s` on the host (the same fixed command as exec) whose stdin stays open, for running
   * many steps over one channel (src/io/step-shell.ts).
   */
  shell(): Promise<ShellProcess> {
    return new Promise((resolve, reject) => {
      this.client.exec('/bin/sh -s', (err: Error | undefined, channel: ClientChannel) => {
        if (err) return reject(new LadingError(`${this.label}: cannot start a remote shell: ${err.message}`));
        const closed = new Promise<void>((done) => channel.once('close', () => done()));
        resolve({
          stdin: channel,
          stdout: channel,
          stderr: channel.stderr,
          kill: () => {
            try {
              channel.signal('KILL');
            } catch {
              // the channel is already gone
            }
            channel.close();
          },
          closed,
        });
      });
    });
  }

  /**
   * Runs a script file lading uploaded (`/bin/sh <path>`: the path is lading's own, never user data) with live
   * streams, stdin free for the command it runs; with `pty`, on a pseudo-terminal of that size.
   */
  spawn(path: string, opts: { pty?: PtyRequest } = {}): Promise<RemoteProcess> {
    if (!SCRIPT_PATH_RE.test(path)) throw new LadingError(`${this.label}: refusing to run '${path}'`);
    return new Promise((resolve, reject) => {
      const options = opts.pty ? { pty: { rows: opts.pty.rows, cols: opts.pty.cols, term: opts.pty.term } } : {};
      this.client.exec(`/bin/sh ${path}`, options, (err: Error | undefined, channel: ClientChannel) => {
        if (err) return reject(new LadingError(`${this.label}: cannot start a remote command: ${err.message}`));
        let code = -1;
        channel.on('exit', (c: number | null) => {
          if (typeof c === 'number') code = c;
        });
        const exit = new Promise<number>((done) => channel.once('close', () => done(code)));
        resolve({
          stdin: channel,
          stdout: channel,
          stderr: channel.stderr,
          exit,
          resize: (rows, cols) => channel.setWindow(rows, cols, 0, 0),
          endInput: () => channel.end(),
          kill: () => {
            try {
              channel.signal('KILL');
            } catch {
              // the channel is already gone
            }
            channel.close();
          },
        });
      });
    });
  }

  private sftp(): Promise<SFTPWrapper> {
    this.sftpP ??= new Promise((resolve, reject) =>
      this.client.sftp((err: Error | undefined, s: SFTPWrapper) =>
        err
          ? reject(
              new LadingError(
                `${this.label}: SFTP is not available: ${err.message}`,
                'enable the sftp subsystem in sshd',
              ),
            )
          : resolve(s),
      ),
    );
    return this.sftpP;
  }

  /**
   * Writes a file atomically (temp name, chmod, rename), so readers never see half of it. Over SFTP where the host
   * offers it, else through /bin/sh with the content as base64 data on stdin.
   */
  async upload(remotePath: string, content: string | Buffer, mode: number): Promise<void> {
    let sftp: SFTPWrapper;
    try {
      sftp = await this.sftp();
    } catch {
      return this.uploadViaShell(remotePath, content, mode);
    }
    const tmp = `${remotePath}.tmp-${randomBytes(4).toString('hex')}`;
    const call = (what: string, fn: (cb: (err?: Error | null) => void) => void) =>
      new Promise<void>((resolve, reject) =>
        fn((err) =>
          err ? reject(new LadingError(`${this.label}: ${what} ${remotePath} failed: ${err.message}`)) : resolve(),
        ),
      );
    await call('writing', (cb) => sftp.writeFile(tmp, content, { mode }, cb));
    await call('chmod of', (cb) => sftp.chmod(tmp, mode, cb));
    await call('renaming into', (cb) => sftp.ext_openssh_rename(tmp, remotePath, cb));
  }

  /** Streams a local file over SFTP (parallel writes, flat memory) to a temp name, then renames it into place. */
  async uploadFile(remotePath: string, localPath: string, mode: number): Promise<void> {
    let sftp: SFTPWrapper;
    try {
      sftp = await this.sftp();
    } catch {
      return this.uploadViaShell(remotePath, await readFile(localPath), mode); // no SFTP: small files only, in memory
    }
    const tmp = `${remotePath}.tmp-${randomBytes(4).toString('hex')}`;
    const call = (what: string, fn: (cb: (err?: Error | null) => void) => void) =>
      new Promise<void>((resolve, reject) =>
        fn((err) =>
          err ? reject(new LadingError(`${this.label}: ${what} ${remotePath} failed: ${err.message}`)) : resolve(),
        ),
      );
    await call('uploading', (cb) => sftp.fastPut(localPath, tmp, { mode, concurrency: 16, chunkSize: 64 * 1024 }, cb));
    await call('chmod of', (cb) => sftp.chmod(tmp, mode, cb));
    await call('renaming into', (cb) => sftp.ext_openssh_rename(tmp, remotePath, cb));
  }

  async uploadViaShell(remotePath: string, content: string | Buffer, mode: number): Promise<void> {
    const res = await this.exec(
      'set -eu; umask 077; t="$LADING_PATH.tmp-$$"; printf %s "$LADING_CONTENT" | base64 -d >"$t"; chmod "$LADING_MODE" "$t"; mv -f "$t" "$LADING_PATH"',
      {
        env: {
          LADING_PATH: remotePath,
          LADING_MODE: mode.toString(8),
          LADING_CONTENT: Buffer.from(content).toString('base64'),
        },
      },
    );
    if (res.code !== 0) throw new LadingError(`${this.label}: writing ${remotePath} failed: ${res.stderr.trim()}`);
  }

  async download(remotePath: string): Promise<Buffer> {
    const sftp = await this.sftp();
    return new Promise((resolve, reject) =>
      sftp.readFile(remotePath, (err: Error | undefined, data: Buffer) =>
        err ? reject(new LadingError(`${this.label}: reading ${remotePath} failed: ${err.message}`)) : resolve(data),
      ),
    );
  }

  close(): void {
    this.client.end();
    this.release?.();
  }
}

/**
 * Jump host connections shared by every host reached through them during one deploy: a fleet behind a bastion
 * costs the bastion one SSH connection (and one handshake) instead of one per host, which also keeps a parallel
 * rollout under sshd's MaxStartups there. Each host still gets its own end-to-end connection, host key checked,
 * through a forwarded channel. A connection is ended when its last host lets go of it, and replaced if it drops.
 */
export class JumpHosts {
  private readonly open = new Map<string, { client: Promise<ssh2.Client>; users: number }>();

  async acquire(
    target: Omit<SshTarget, 'jump'>,
    logger: Logger,
  ): Promise<{ client: ssh2.Client; release: () => void }> {
    const key = `${target.user}@${hostKeyName(target.host, target.port ?? 22)}`;
    let entry = this.open.get(key);
    if (!entry) {
      const client = connectOne(target, logger);
      const created = { client, users: 0 };
      entry = created;
      this.open.set(key, created);
      client.then(
        (c) => c.once('close', () => this.open.get(key) === created && this.open.delete(key)),
        () => this.open.get(key) === created && this.open.delete(key),
      );
    }
    entry.users++;
    const mine = entry;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      if (--mine.users > 0) return;
      if (this.open.get(key) === mine) this.open.delete(key);
      mine.client.then(
        (c) => c.end(),
        () => undefined,
      );
    };
    try {
      return { client: await mine.client, release };
    } catch (err) {
      release();
      throw err;
    }
  }
}

/**
 * Connects with pinned host keys (the jump host's too), key authentication, keepalive and a connect timeout.
 * `jumps`: jump host connections to share with other hosts of the same deploy (else one of its own).
 */
export async function connect(target: SshTarget, logger: Logger, jumps?: JumpHosts): Promise<SshSession> {
  const port = target.port ?? 22;
  const label = `${target.user}@${hostKeyName(target.host, port)}`;
  if (!target.jump) return new SshSession(await connectOne(target, logger), label);
  const { client: jump, release } = await (jumps ?? new JumpHosts()).acquire(target.jump, logger);
  try {
    const stream = await new Promise<NodeJS.ReadableStream>((resolve, reject) =>
      jump.forwardOut('127.0.0.1', 0, target.host, port, (err: Error | undefined, s: ClientChannel) =>
        err ? reject(new LadingError(`the jump host cannot reach ${target.host}:${port}: ${err.message}`)) : resolve(s),
      ),
    );
    return new SshSession(await connectOne(target, logger, stream), label, release);
  } catch (err) {
    release();
    throw err;
  }
}

export async function withSsh<T>(target: SshTarget, logger: Logger, fn: (s: SshSession) => Promise<T>): Promise<T> {
  const session = await connect(target, logger);
  try {
    return await fn(session);
  } finally {
    session.close();
  }
}
