/** The day-2 verbs' own settings, parsed at the edge (src/settings/ops.ts). */
export interface LogsSettings {
  service?: string;
  /** Lines per container, or all. */
  tail?: string;
  /** A duration or a date/time docker understands. */
  since?: string;
  follow: boolean;
  timestamps: boolean;
}

export interface ExecSettings {
  service: string;
  /** In a running container of the service, not a one-off one. */
  running: boolean;
  /** Only this host (a label, host, host:port or user@host:port). */
  host?: string;
}

export interface LockSettings {
  /** Release another run's lock when its lease ran out. */
  force: boolean;
  /** Release the lock of this holder (its owner, as lock status shows it). */
  confirm?: string;
}

export interface PruneSettings {
  dryRun: boolean;
}
