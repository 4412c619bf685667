import { randomBytes } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import type { HostSession } from '../../io/host-session.ts';
import type { PtyRequest, RemoteProcess } from '../../io/remote-process.ts';
import { InputError, LadingError, describeError } from '../../lib/errors.ts';
import { argvEnv } from '../../lib/ops.ts';
import { envAssignments } from '../../lib/shell.ts';
import type { HostStageOptions } from '../host/types.ts';
import { opsScripts } from '../host/steps.ts';
import { type HostOutcome, type Place, eachPlace, placesOf, withSession } from './places.ts';
import type { ExecSettings, LogsSettings } from './types.ts';

// Streamed verbs: logs and exec run from a one-shot script file, so stdin stays the caller's.

/**
 * Uploads a one-shot script (it removes itself first) into the project's directory and starts it with live
 * streams: the env travels inside the file (0600), so stdin stays the caller's.
 */
async function startScript(
  session: HostSession,
  place: Place,
  label: string,
  steps: string,
  env: Record<string, string>,
  pty?: PtyRequest,
): Promise<RemoteProcess> {
  if (!session.spawn) throw new LadingError(`${label}: this connection cannot stream a command`);
  const path = `${env.LADING_ROOT}/${env.LADING_PROJECT}/.lading-ops-${randomBytes(8).toString('hex')}.sh`;
  const script = `rm -f "$0"\n${envAssignments(env)}\n${opsScripts(place.target)}\nlading_ops ${steps}\n`;
  try {
    await session.upload(path, script, 0o600);
  } catch (err) {
    throw new LadingError(
      `${label}: cannot write to ${env.LADING_ROOT}/${env.LADING_PROJECT}: ${describeError(err)}`,
      `is ${env.LADING_PROJECT} deployed there? (lading status shows what runs)`,
    );
  }
  return session.spawn(path, pty ? { pty } : {});
}

/** Copies a stream into `out` line by line, each formatted; pauses the source while `out` is full. */
function pipeLines(
  from: NodeJS.ReadableStream,
  out: NodeJS.WritableStream,
  format: (line: string) => string,
): Promise<void> {
  const decoder = new StringDecoder('utf8');
  let partial = '';
  return new Promise((resolve) => {
    from.on('data', (chunk: Buffer | string) => {
      const text = partial + (typeof chunk === 'string' ? chunk : decoder.write(chunk));
      const lines = text.split('\n');
      partial = lines.pop()!;
      if (lines.length === 0) return;
      if (!out.write(lines.map(format).join(''))) {
        from.pause();
        out.once('drain', () => from.resume());
      }
    });
    from.on('end', () => {
      const rest = partial + decoder.end();
      if (rest) out.write(format(rest));
      resolve();
    });
    from.on('close', () => resolve());
  });
}

export interface LogsOptions extends HostStageOptions {
  logs: LogsSettings;
  out: NodeJS.WritableStream;
  /** Aborting ends every host's log readers (Ctrl-C on the CLI). */
  signal?: AbortSignal;
  /** One JSON object per line: {"host", "line"}. */
  json?: boolean;
}

/**
 * Logs of one service or all, from every host at once, each line as `[host] <service>-<n> | <line>`, streamed as
 * they come (nothing is held in memory beyond a line). With follow, runs until the signal aborts.
 */
export async function runLogsStage(opts: LogsOptions): Promise<HostOutcome[]> {
  const { places } = await placesOf(opts);
  const env: Record<string, string> = {};
  const { service, tail, since, follow, timestamps } = opts.logs;
  if (service) env.LADING_SERVICE = service;
  if (tail) env.LADING_TAIL = tail;
  if (since) env.LADING_SINCE = since;
  if (follow) env.LADING_FOLLOW = '1';
  if (timestamps) env.LADING_TIMESTAMPS = '1';
  return eachPlace(places, places.length, async (place): Promise<HostOutcome> => {
    try {
      return await withSession(place, async (session, label) => {
        const step = place.target === 'swarm' ? 'ops_swarm_logs' : 'ops_logs';
        const proc = await startScript(session, place, label, step, { ...place.env, ...env });
        let killer: NodeJS.Timeout | undefined;
        const stop = () => {
          proc.endInput();
          killer = setTimeout(() => proc.kill(), 5000);
        };
        if (opts.signal?.aborted) stop();
        opts.signal?.addEventListener('abort', stop, { once: true });
        let stderr = '';
        proc.stderr.on('data', (c: Buffer) => {
          stderr = (stderr + c.toString('utf8')).slice(-4000);
        });
        const format = opts.json
          ? (line: string) => `${JSON.stringify({ host: label, line })}\n`
          : (line: string) => `[${label}] ${line}\n`;
        const piped = pipeLines(proc.stdout, opts.out, format);
        const code = await proc.exit;
        await piped;
        if (killer) clearTimeout(killer);
        opts.signal?.removeEventListener('abort', stop);
        if (opts.signal?.aborted) return { host: label, code: 0 };
        const said = stderr.trim().split('\n').filter(Boolean).slice(-5).join('\n');
        return code === 0 ? { host: label, code } : { host: label, code, error: said || `exit status ${code}` };
      });
    } catch (err) {
      return { host: place.label, code: 1, error: describeError(err) };
    }
  });
}

export interface ExecOptions extends HostStageOptions {
  exec: ExecSettings;
  argv: string[];
  stdin?: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** The caller's terminal: the command gets a PTY of this size (stdin is then that terminal, in raw mode). */
  pty?: PtyRequest;
  /** Called with a function to forward terminal resizes to. */
  onResize?: (resize: (rows: number, cols: number) => void) => () => void;
}

/**
 * Runs a command in a new one-off container of the current release (compose run --rm: its config, env and
 * networks), or with `running` in a running container of the service; on `host` or on every host in order,
 * stopping at the first that fails. The result's code is the command's exit status.
 */
export async function runExecStage(opts: ExecOptions): Promise<{ code: number; hosts: HostOutcome[] }> {
  const { places } = await placesOf(opts);
  const { service, running, host: only } = opts.exec;
  const env: Record<string, string> = { LADING_SERVICE: service, ...argvEnv(opts.argv) };
  if (running) env.LADING_RUNNING = '1';
  if (opts.pty) env.LADING_TTY = '1';
  const chosen = only ? places.filter((p) => p.names.includes(only)) : places;
  if (chosen.length === 0) {
    const swarm = places[0]?.target === 'swarm';
    throw new InputError(
      'host',
      `'${only}' is none of the ${swarm ? "stack's managers" : 'hosts'} (${[...new Set(places.flatMap((p) => (swarm ? p.names : [p.label])))].join(', ')})`,
      swarm ? 'on a swarm stack exec runs through a manager: name one, or leave --host out' : undefined,
    );
  }
  const hosts: HostOutcome[] = [];
  for (const place of chosen) {
    if (chosen.length > 1) opts.stderr.write(`== ${place.label}\n`);
    const outcome = await withSession(place, async (session, label): Promise<HostOutcome> => {
      const step = place.target === 'swarm' ? 'ops_swarm_exec' : 'ops_exec';
      if (place.target === 'swarm' && !env.LADING_RUNNING) {
        opts.reporter.info(
          `[${label}] one-off container of ${place.project}_${service} with the service's environment`,
        );
      }
      const proc = await startScript(session, place, label, step, { ...place.env, ...env }, opts.pty);
      const unresize = opts.pty && opts.onResize ? opts.onResize((r, c) => proc.resize(r, c)) : undefined;
      // stdin: the terminal, or (one host) the caller's input; otherwise none
      const input = opts.pty || chosen.length === 1 ? opts.stdin : undefined;
      if (input) input.pipe(proc.stdin as NodeJS.WritableStream, { end: true });
      else proc.endInput();
      proc.stdout.on('data', (c: Buffer) => opts.stdout.write(c));
      proc.stderr.on('data', (c: Buffer) => opts.stderr.write(c));
      const code = await proc.exit;
      if (input) input.unpipe(proc.stdin as NodeJS.WritableStream);
      unresize?.();
      return { host: label, code };
    }).catch((err: unknown) => ({ host: place.label, code: 1, error: describeError(err) }));
    hosts.push(outcome);
    if (outcome.error) opts.stderr.write(`lading exec: ${outcome.error}\n`);
    if (outcome.code !== 0) break;
  }
  return { code: hosts.find((h) => h.code !== 0)?.code ?? 0, hosts };
}
