/** How stages talk to the user: the action maps this onto @actions/core, the CLI onto stderr. */
export interface Reporter {
  info(line: string): void;
  warning(line: string): void;
  /** A named, collapsible section (core.group on a runner). */
  group<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /** Registers a secret so it is masked in every later log line (core.setSecret on a runner). */
  secret(value: string): void;
}

export function stderrReporter(quiet = false): Reporter {
  const secrets: string[] = [];
  const mask = (line: string) => secrets.reduce((l, s) => (s ? l.split(s).join('***') : l), line);
  return {
    info: (line) => {
      if (!quiet) process.stderr.write(`${mask(line)}\n`);
    },
    warning: (line) => process.stderr.write(`warning: ${mask(line)}\n`),
    group: async (name, fn) => {
      if (!quiet) process.stderr.write(`== ${mask(name)}\n`);
      return fn();
    },
    secret: (value) => {
      if (value) secrets.push(value);
    },
  };
}
