import { randomBytes } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import { LadingError } from '../lib/errors.ts';
import { envAssignments } from '../lib/shell.ts';

/** A running `/bin/sh -s` (an SSH exec channel or a local child): its pipes, a kill switch, and its end. */
export interface ShellProcess {
  stdin: NodeJS.WritableStream;
  stdout: NodeJS.ReadableStream;
  stderr: NodeJS.ReadableStream;
  /** Ends it at once (a step that timed out). */
  kill(): void;
  /** Settles when the process (or channel) is gone. */
  closed: Promise<void>;
}

export interface StepOptions {
  env?: Record<string, string>;
  timeoutMs?: number;
  onStdout?: (chunk: string) => void;
  onStderr?: (chunk: string) => void;
}

export interface StepOutcome {
  code: number;
  stdout: string;
  stderr: string;
}

interface Pending {
  marker: string;
  stdoutDone?: number;
  stderrDone: boolean;
  forwarded: number;
  opts: StepOptions;
  finish: (res: StepOutcome) => void;
  fail: (err: Error) => void;
}

/**
 * One long-lived `/bin/sh -s` per host that runs many steps: the preamble (the host script's functions) is sent
 * once, then each step travels on stdin as `( set -eu; export …; <script> ) </dev/null` followed by an end marker
 * with its exit status on stdout and stderr. A step costs one round trip instead of a new SSH channel (a channel
 * is a fork + exec on the host, ~150 ms on the test sshd) and the host script is not resent per step.
 *
 * Data still reaches the shell only as quoted `export` lines (src/lib/shell.ts); each step runs in a subshell with
 * stdin from /dev/null, so nothing a step runs can read the script stream, and a failing step cannot end the shell.
 * The markers carry a random nonce per shell. A step whose shell ends before its marker counts as failed (no exit
 * status); a step that times out kills the shell, and the next step gets a fresh one.
 */
export class StepShell {
  private readonly nonce = randomBytes(8).toString('hex');
  private n = 0;
  private out = '';
  private err = '';
  private pending: Pending | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private ended = false;

  private constructor(
    private readonly proc: ShellProcess,
    private readonly label: string,
  ) {
    const outDec = new StringDecoder('utf8');
    const errDec = new StringDecoder('utf8');
    proc.stdout.on('data', (c: Buffer) => {
      this.out += outDec.write(c);
      this.scan();
    });
    proc.stderr.on('data', (c: Buffer) => {
      this.err += errDec.write(c);
      this.scan();
    });
    proc.stdin.on('error', () => {}); // a shell that is gone shows up as `closed`
    void proc.closed.then(() => {
      this.ended = true;
      const p = this.pending;
      if (!p) return;
      this.pending = undefined;
      const stdout = p.stdoutDone !== undefined ? this.out.slice(0, p.stdoutDone) : this.out;
      p.finish({
        code: -1,
        stdout,
        stderr: `${this.err.split(`\n${p.marker}\n`)[0]}\nthe remote shell ended without an exit status`,
      });
    });
  }

  /** Starts the shell's life: the preamble (function definitions) is read once, then errexit is off at top level. */
  static start(proc: ShellProcess, preamble: string, label: string): StepShell {
    const shell = new StepShell(proc, label);
    proc.stdin.write(`${preamble}\nset +eu\n`);
    return shell;
  }

  get alive(): boolean {
    return !this.ended;
  }

  /** Runs one step; steps on one shell run one after the other. */
  run(script: string, opts: StepOptions = {}): Promise<StepOutcome> {
    const next = this.queue.then(() => this.runNow(script, opts));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private runNow(script: string, opts: StepOptions): Promise<StepOutcome> {
    if (this.ended) {
      return Promise.resolve({ code: -1, stdout: '', stderr: 'the remote shell ended without an exit status' });
    }
    const marker = `__lading_end_${this.nonce}_${++this.n}`;
    this.out = '';
    this.err = '';
    return new Promise<StepOutcome>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        if (timer) clearTimeout(timer);
        this.pending = undefined;
      };
      this.pending = {
        marker,
        stderrDone: false,
        forwarded: 0,
        opts,
        finish: (res) => {
          done();
          resolve(res);
        },
        fail: (err) => {
          done();
          reject(err);
        },
      };
      if (opts.timeoutMs) {
        timer = setTimeout(() => {
          this.ended = true;
          this.proc.kill();
          this.pending?.fail(
            new LadingError(
              `${this.label}: remote step timed out after ${Math.round(opts.timeoutMs! / 1000)}s`,
              'raise step-timeout if the host is just slow (large pulls, image loads), else check it is responsive',
            ),
          );
        }, opts.timeoutMs);
      }
      const env = opts.env && Object.keys(opts.env).length > 0 ? `${envAssignments(opts.env)}\n` : '';
      this.proc.stdin.write(
        `(\nset -eu\n${env}${script}\n) </dev/null\n` +
          `printf '\\n%s %s\\n' '${marker}' "$?"\nprintf '\\n%s\\n' '${marker}' >&2\n`,
      );
    });
  }

  /** Looks for the current step's end markers; forwards complete stderr lines as they arrive. */
  private scan(): void {
    const p = this.pending;
    if (!p) return;
    if (p.stdoutDone === undefined) {
      const at = this.out.indexOf(`\n${p.marker} `);
      if (at !== -1) {
        const eol = this.out.indexOf('\n', at + 1);
        if (eol !== -1) p.stdoutDone = at;
      }
    }
    if (!p.stderrDone) {
      const at = this.err.indexOf(`\n${p.marker}\n`);
      const upTo = at !== -1 ? at : this.err.lastIndexOf('\n');
      if (upTo > p.forwarded) {
        p.opts.onStderr?.(this.err.slice(p.forwarded, upTo));
        p.forwarded = upTo;
      }
      if (at !== -1) p.stderrDone = true;
    }
    if (p.stdoutDone !== undefined && p.stderrDone) {
      const tail = this.out.slice(p.stdoutDone + p.marker.length + 2);
      const code = Number.parseInt(tail, 10);
      const stdout = this.out.slice(0, p.stdoutDone);
      const stderr = this.err.slice(0, this.err.indexOf(`\n${p.marker}\n`));
      p.opts.onStdout?.(stdout);
      p.finish({ code: Number.isInteger(code) ? code : -1, stdout, stderr });
    }
  }

  /** Ends the shell: EOF on its stdin. */
  close(): void {
    if (this.ended) return;
    this.ended = true;
    this.proc.stdin.end();
  }
}
