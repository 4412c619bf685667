/** How stages talk to the user: the action maps this onto @actions/core, the CLI onto stderr. */
export interface Reporter {
  info(line: string): void;
  warning(line: string): void;
  /** A named, collapsible section (core.group on a runner). */
  group<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /** Registers a secret so it is masked in every later log line (core.setSecret on a runner). */
  secret(value: string): void;
}

// Every secret any stderr reporter of this process was given: the CLI masks its final error line with them too (a
// failed build's error carries its last log lines, which a Dockerfile may have printed a secret into).
const registered = new Set<string>();

/**
 * `text` with each of `secrets` replaced by `***`, the longest first: a secret that contains a shorter one (a value
 * and its prefix) is masked whole, never left with its tail showing.
 */
function maskIn(text: string, secrets: Iterable<string>): string {
  return [...secrets].sort((a, b) => b.length - a.length).reduce((t, s) => t.split(s).join('***'), text);
}

/** `text` with every secret registered with a stderr reporter of this process replaced by `***`. */
export function maskRegistered(text: string): string {
  return maskIn(text, registered);
}

/**
 * Lines on stderr. `timestamps` prefixes each line with the UTC time (ISO 8601, seconds): for a long-running or
 * cron agent whose log is a file, not a CI step that timestamps lines itself.
 */
export function stderrReporter(
  quiet = false,
  opts: { timestamps?: boolean; now?: () => Date; write?: (text: string) => void } = {},
): Reporter {
  const secrets = new Set<string>();
  const mask = (line: string) => maskIn(line, secrets);
  const write = opts.write ?? ((text: string) => process.stderr.write(text));
  const stamp = () =>
    opts.timestamps
      ? `${(opts.now ?? (() => new Date()))()
          .toISOString()
          .replace(/\.\d{3}Z$/, 'Z')} `
      : '';
  const out = (line: string) =>
    write(
      line
        .split('\n')
        .map((l) => `${stamp()}${l}\n`)
        .join(''),
    );
  return {
    info: (line) => {
      if (!quiet) out(mask(line));
    },
    warning: (line) => out(`warning: ${mask(line)}`),
    group: async (name, fn) => {
      if (!quiet) out(`== ${mask(name)}`);
      return fn();
    },
    secret: (value) => {
      if (!value) return;
      secrets.add(value);
      registered.add(value);
    },
  };
}

/**
 * A Reporter whose info lines written before its first group are printed inside that group, first: what a stage
 * notes while it prepares (a registry used anonymously, say) lands under the `== deploy …` header it belongs to.
 * Warnings are never held back; `flush` prints what is still held (a stage that fails before any group).
 */
export function deferUntilGroup(parent: Reporter): Reporter & { flush(): void } {
  let held: string[] | undefined = [];
  const flush = () => {
    const lines = held ?? [];
    held = undefined;
    for (const l of lines) parent.info(l);
  };
  return {
    info: (line) => (held ? held.push(line) : parent.info(line)),
    warning: (line) => parent.warning(line),
    group: (name, fn) =>
      parent.group(name, async () => {
        flush();
        return fn();
      }),
    secret: (value) => parent.secret(value),
    flush,
  };
}
