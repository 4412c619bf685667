import { describeError, InputError, LadingError } from '../lib/errors.ts';
import { unsupportedNode } from '../lib/runtime.ts';
import { maskRegistered } from '../io/reporter.ts';
import { agentCommand, notifyCommand } from './agent.ts';
import { cliError, type Command, commandHelp, type ParsedArgs, parseCommandArgs } from './args.ts';
import pkg from '../../package.json' with { type: 'json' };
import { deployCommand, maintenanceCommand, releasesCommand, rollbackCommand } from './deploy.ts';
import { extractCommand } from './extract.ts';
import { execCommand, lockCommand, logsCommand, pruneCommand, statusCommand } from './ops.ts';
import { buildCommand, manifestCommand, pushCommand } from './stages.ts';
import { newestCommand, staleCommand } from './stale.ts';
import { exportCommand, loadCommand, retentionCommand } from './store.ts';
import { tagsCommand } from './tags.ts';

const COMMANDS: Command[] = [
  tagsCommand,
  buildCommand,
  pushCommand,
  exportCommand,
  manifestCommand,
  loadCommand,
  retentionCommand,
  extractCommand,
  deployCommand,
  rollbackCommand,
  releasesCommand,
  statusCommand,
  logsCommand,
  execCommand,
  lockCommand,
  pruneCommand,
  maintenanceCommand,
  agentCommand,
  notifyCommand,
  staleCommand,
  newestCommand,
];

/** Exit codes: 0 done, 1 failed (the message says why), 2 bad usage or input (nothing was touched). */
function usage(): string {
  const names = COMMANDS.map((c) => `  ${c.name.padEnd(10)}${c.summary}`).join('\n');
  return `lading: from git push to containers running on servers\n\nUsage: lading <command> [flags]\n\nCommands:\n${names}\n\nRun 'lading <command> --help' for a command's flags; 'lading --version' for the version.\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    process.stdout.write(`lading ${pkg.version}\n`);
    return 0;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    process.stderr.write(`lading: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  let args: ParsedArgs | undefined;
  try {
    args = parseCommandArgs(cmd.name, rest, process.env, { positionals: !!cmd.positionals });
    for (const w of args.warnings) process.stderr.write(`warning: ${w}\n`);
    if (args.help) {
      process.stdout.write(commandHelp(cmd));
      return 0;
    }
    return await cmd.run(args.read, args.flags, args.positionals);
  } catch (caught) {
    const err = cliError(caught, args);
    process.stderr.write(`lading ${cmd.name}: ${maskRegistered(describeError(err))}\n`);
    if (!(err instanceof LadingError) && err instanceof Error && process.env.LADING_DEBUG) {
      process.stderr.write(`${maskRegistered(err.stack ?? '')}\n`);
    }
    return caught instanceof InputError ? 2 : 1;
  }
}

const tooOld = unsupportedNode(process.version);
if (tooOld) {
  process.stderr.write(`lading: ${tooOld}\n`);
  process.exitCode = 1;
} else process.exitCode = await main(process.argv.slice(2));
