/** The oldest Node the CLI runs on: 20 is past its end of life (and the AWS SDK warns on every run). */
export const MIN_NODE_MAJOR = 22;

/** Why this Node cannot run lading (a message that says what to do), or undefined when it can. */
export function unsupportedNode(version: string): string | undefined {
  const major = Number(/^v?(\d+)\./.exec(version)?.[1] ?? 'NaN');
  if (major >= MIN_NODE_MAJOR) return undefined;
  return (
    `lading needs Node ${MIN_NODE_MAJOR} or newer; this is Node ${version}. ` +
    'Install a current Node (e.g. from nodejs.org or your package manager), or run lading with one: ' +
    'npx -y node@24 "$(command -v lading)" …'
  );
}
