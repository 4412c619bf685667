import { readInputs, type InputReader } from '../lib/input-values.ts';
import { parseService, parseSince, parseTail } from '../lib/ops.ts';
import type { ExecSettings, LockSettings, LogsSettings, PruneSettings } from '../stages/ops/types.ts';

/** The day-2 verbs' own settings (their host settings are the deploy's: src/settings/host.ts), parsed at the edge. */

export function readLogsSettings(read: InputReader): LogsSettings {
  const v = readInputs(read, ['service', 'tail', 'since', 'follow', 'timestamps']);
  const s: LogsSettings = { follow: v.follow, timestamps: v.timestamps };
  const service = parseService(v.service, false);
  if (service) s.service = service;
  const tail = parseTail(v.tail);
  if (tail) s.tail = tail;
  const since = parseSince(v.since);
  if (since) s.since = since;
  return s;
}

export function readExecSettings(read: InputReader): ExecSettings {
  const v = readInputs(read, ['service', 'running', 'host']);
  const s: ExecSettings = { service: parseService(v.service, true)!, running: v.running };
  if (v.host) s.host = v.host;
  return s;
}

export function readLockSettings(read: InputReader): LockSettings {
  const v = readInputs(read, ['force', 'confirm']);
  return v.confirm ? { force: v.force, confirm: v.confirm } : { force: v.force };
}

export function readPruneSettings(read: InputReader): PruneSettings {
  return { dryRun: readInputs(read, ['dry-run'])['dry-run'] };
}
