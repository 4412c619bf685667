import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** The pull-mode agent's memory: what was deployed or tried, so the same manifest is never deployed twice (nor a
 * failed one retried forever). One JSON file, replaced atomically, readable only by the agent. */

export interface AgentState {
  /** Version (ETag / generation) of the channel manifest last read. */
  version?: string;
  /** Identity of the manifest last deployed successfully. */
  deployed?: string;
  /** Identities deployed or tried, newest last (bounded). */
  tried: string[];
}

export async function readState(file: string): Promise<AgentState> {
  try {
    const s = JSON.parse(await readFile(file, 'utf8')) as Partial<AgentState>;
    return {
      tried: Array.isArray(s.tried) ? s.tried.filter((x) => typeof x === 'string') : [],
      ...(typeof s.version === 'string' ? { version: s.version } : {}),
      ...(typeof s.deployed === 'string' ? { deployed: s.deployed } : {}),
    };
  } catch {
    return { tried: [] };
  }
}

export async function writeState(file: string, state: AgentState): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(state)}\n`, { mode: 0o600 });
  await rename(tmp, file);
}
