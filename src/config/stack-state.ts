import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The stack's state file (`<STACK_DIR>/state.json`): which services `engage stack up` found or
 * started, at what address, and whether the project owns them. Every command reads it to find the
 * private services without the user exporting anything; `engage stack down` stops only services
 * marked `startedByStack`.
 *
 * It lives with the configuration because that is what it is to every command: where the private
 * services are (src/config/load.ts reads it); src/stack writes it.
 */
export type ServiceName = 'postgres' | 'kafka' | 'redis' | 'registry';
export const SERVICE_NAMES: readonly ServiceName[] = ['postgres', 'kafka', 'redis', 'registry'];

export interface ServiceState {
  url: string;
  startedByStack: boolean;
  /** For a Kafka cluster: its first node's (every node is in `nodes`). */
  pid?: number;
  log?: string;
  dataDir?: string;
  /** The private Kafka's nodes, one per broker/controller process (`engage stack up --kafka-brokers N`). */
  nodes?: NodeState[];
}

/** One node of the private Kafka cluster: its id, PLAINTEXT address and process. */
export interface NodeState {
  id: number;
  url: string;
  pid: number;
  log: string;
  dataDir: string;
}

export interface StackState {
  services: Partial<Record<ServiceName, ServiceState>>;
}

export function stateFile(stackDir: string): string {
  return path.join(stackDir, 'state.json');
}

export function readStackState(stackDir: string): StackState | null {
  const file = stateFile(stackDir);
  if (!existsSync(file)) return null;
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as StackState;
    return parsed && typeof parsed === 'object' && parsed.services ? parsed : null;
  } catch {
    return null;
  }
}

/** Writes atomically (rename), so a reader never sees half a file. */
export function writeStackState(stackDir: string, state: StackState): void {
  mkdirSync(stackDir, { recursive: true });
  const file = stateFile(stackDir);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(tmp, file);
}

export function updateService(stackDir: string, name: ServiceName, service: ServiceState | null): void {
  const state = readStackState(stackDir) ?? { services: {} };
  if (service) state.services[name] = service;
  else delete state.services[name];
  writeStackState(stackDir, state);
}
