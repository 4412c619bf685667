import type { HostSpec } from '../lib/deploy-plan.ts';
import type { PtyRequest, RemoteProcess } from './remote-process.ts';
import type { SshTarget } from './ssh.ts';
import type { ShellProcess } from './step-shell.ts';

/** What the deploy needs from a connected host: run a host step, upload a file. */
export interface HostSession {
  exec(
    script: string,
    opts: {
      env?: Record<string, string>;
      timeoutMs?: number;
      onStdout?: (s: string) => void;
      onStderr?: (s: string) => void;
    },
  ): Promise<{ code: number; stdout: string; stderr: string }>;
  upload(remotePath: string, content: string | Buffer, mode: number): Promise<void>;
  /** Streams a local file up (image archives): memory stays flat in the file's size. Atomic like upload. */
  uploadFile(remotePath: string, localPath: string, mode: number): Promise<void>;
  /** A long-lived /bin/sh -s for many steps (optional: without it every step is a fresh exec). */
  shell?(): Promise<ShellProcess>;
  /** Runs an uploaded script with live streams (logs --follow, exec; optional: those verbs need it). */
  spawn?(path: string, opts: { pty?: PtyRequest }): Promise<RemoteProcess>;
  close(): Promise<void> | void;
}

/** SSH settings shared by every host (an SshTarget without host, port and user). */
export type SshSettings = Omit<SshTarget, 'host' | 'port' | 'user'>;

/** Where a connector logs (a Reporter fits). */
export interface ConnectLog {
  info(line: string): void;
  warning(line: string): void;
}

/** Opens a session to one host (SSH in production; a local shell for the agent and tests; fakes in unit tests). */
export type Connector = (host: HostSpec, settings: { ssh: SshSettings }, log: ConnectLog) => Promise<HostSession>;
