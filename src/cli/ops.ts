import { InputError } from '../lib/errors.ts';
import { formatBytes, renderStatus } from '../lib/ops.ts';
import { runLockStage } from '../stages/ops/lock.ts';
import { runPruneStage } from '../stages/ops/prune.ts';
import { runStatusStage } from '../stages/ops/status.ts';
import { runExecStage, runLogsStage } from '../stages/ops/stream.ts';
import { stderrReporter } from '../io/reporter.ts';
import { readExecSettings, readLockSettings, readLogsSettings, readPruneSettings } from '../settings/ops.ts';
import { readInputs } from '../lib/input-values.ts';
import { hereOrOverSsh } from './local.ts';
import type { Command } from './args.ts';

// Day-2 verbs: their flags are rows of the table of inputs (src/lib/input-table.ts), the host ones shared with deploy.

// With --root and no --hosts they run on this machine (a pull-mode host looking at itself).
const stageOpts = async (read: Parameters<Command['run']>[0], quiet = false) => ({
  ...(await hereOrOverSsh(read)),
  reporter: stderrReporter(quiet),
});

export const statusCommand: Command = {
  name: 'status',
  summary: 'what runs on each host: current release, containers (state, health, restarts, uptime, digest), drift, lock',
  async run(read, flags) {
    const report = await runStatusStage(await stageOpts(read, true));
    process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : renderStatus(report));
    return report.ok ? 0 : 1;
  },
};

export const logsCommand: Command = {
  name: 'logs',
  summary: "containers' logs from every host, each line prefixed with its host and container; --follow until Ctrl-C",
  async run(read, flags) {
    const ac = new AbortController();
    const stop = () => ac.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      const hosts = await runLogsStage({
        ...(await stageOpts(read, true)),
        logs: readLogsSettings(read),
        out: process.stdout,
        signal: ac.signal,
        json: !!flags.json,
      });
      for (const h of hosts) if (h.error) process.stderr.write(`lading logs: ${h.host}: ${h.error}\n`);
      return hosts.some((h) => h.code !== 0) ? 1 : 0;
    } finally {
      process.removeListener('SIGINT', stop);
      process.removeListener('SIGTERM', stop);
    }
  },
};

export const execCommand: Command = {
  name: 'exec',
  summary:
    'run a command in a one-off container of the current release (or --running), on --host or every host in order',
  positionals: '-- COMMAND [ARG...]',
  async run(read, flags, argv) {
    const stdin = process.stdin;
    const want = readInputs(read, ['tty']).tty;
    const exec = readExecSettings(read);
    const host = await stageOpts(read, true);
    const tty = want === 'auto' ? !!stdin.isTTY : want === 'true';
    if (tty && !stdin.isTTY) throw new InputError('tty', 'is true but stdin is not a terminal');
    const pty = tty
      ? { rows: process.stdout.rows || 24, cols: process.stdout.columns || 80, term: process.env.TERM || 'xterm' }
      : undefined;
    if (tty) stdin.setRawMode(true);
    try {
      const { code, hosts } = await runExecStage({
        ...host,
        exec,
        argv,
        stdin,
        stdout: process.stdout,
        stderr: process.stderr,
        ...(pty ? { pty } : {}),
        onResize: (resize) => {
          const on = () => resize(process.stdout.rows, process.stdout.columns);
          process.stdout.on('resize', on);
          return () => process.stdout.removeListener('resize', on);
        },
      });
      if (flags.json) process.stdout.write(`${JSON.stringify({ code, hosts }, null, 2)}\n`);
      return code;
    } finally {
      if (tty) stdin.setRawMode(false);
      stdin.pause();
      stdin.unref?.();
    }
  },
};

export const lockCommand: Command = {
  name: 'lock',
  summary: "the deploy lock on each host: status, or release (this run's own; --force for an expired or confirmed one)",
  positionals: 'status | release',
  async run(read, flags, words) {
    const [verb, ...extra] = words;
    if ((verb !== 'status' && verb !== 'release') || extra.length > 0) {
      throw new InputError('arguments', `expected 'status' or 'release', got '${words.join(' ')}'`);
    }
    const hosts = await runLockStage({ ...(await stageOpts(read)), lock: readLockSettings(read) }, verb === 'release');
    if (flags.json) process.stdout.write(`${JSON.stringify(hosts, null, 2)}\n`);
    else {
      for (const h of hosts) {
        const l = h.lock;
        const held = l
          ? `held by ${l.owner} (${l.host}), ${l.expired ? `lease ran out at ${l.expiresAt}` : `until ${l.expiresAt}`}`
          : 'free';
        process.stdout.write(`${h.host}\t${h.error ? `error: ${h.error}` : held}\n`);
        if (verb === 'release' && !h.error && l) {
          process.stdout.write(
            `  ${h.released ? 'released' : 'not released'}: ${h.why}${h.hint ? ` — ${h.hint}` : ''}\n`,
          );
        }
      }
    }
    if (hosts.some((h) => h.error)) return 1;
    return verb === 'release' && hosts.some((h) => h.lock && !h.released) ? 1 : 0;
  },
};

export const pruneCommand: Command = {
  name: 'prune',
  summary: 'remove releases beyond keep-releases and images no kept release uses (--dry-run: list them and the space)',
  async run(read, flags) {
    const hosts = await runPruneStage({ ...(await stageOpts(read, !!flags.json)), prune: readPruneSettings(read) });
    if (flags.json) process.stdout.write(`${JSON.stringify(hosts, null, 2)}\n`);
    else {
      for (const h of hosts) {
        if (h.error || !h.plan) {
          process.stdout.write(`${h.host}\terror: ${h.error ?? 'no plan'}\n`);
          continue;
        }
        const p = h.plan;
        const verb = h.dryRun ? 'would free' : 'freed';
        process.stdout.write(
          `${h.host}\t${p.releases.length} release(s), ${p.images.length} image(s): ${verb} up to ${formatBytes(p.bytes)}\n`,
        );
        for (const r of p.releases) process.stdout.write(`  release ${r.id}\t${formatBytes(r.bytes)}\n`);
        for (const i of p.images)
          process.stdout.write(`  image ${i.id}\t${formatBytes(i.bytes)}\t${i.names.join(' ')}\n`);
        process.stdout.write(`  kept: ${p.kept.join(' ') || '(none)'}\n`);
      }
    }
    return hosts.some((h) => h.error) ? 1 : 0;
  },
};
