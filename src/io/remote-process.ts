/** A process on a host whose streams are live (lading logs --follow, lading exec): not buffered, not a step. */
export interface RemoteProcess {
  stdin: NodeJS.WritableStream;
  stdout: NodeJS.ReadableStream;
  stderr: NodeJS.ReadableStream;
  /** Its exit status (-1 when it was killed or the connection dropped). */
  exit: Promise<number>;
  /** The terminal was resized (PTY sessions). */
  resize(rows: number, cols: number): void;
  /** Closes its stdin (the streamed ops steps end their readers on that). */
  endInput(): void;
  /** Ends it at once. */
  kill(): void;
}

export interface PtyRequest {
  rows: number;
  cols: number;
  term: string;
}

/** lading's own script paths only (root and project are validated, the name is random hex): never user data. */
export const SCRIPT_PATH_RE = /^\/[A-Za-z0-9._/-]+$/;
