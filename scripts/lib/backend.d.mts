import type { ChildProcess } from 'node:child_process';

export interface RunningConsoleBackend {
  url: string;
  token: string;
  browserUrl: string;
  process: ChildProcess;
  stop(): Promise<void>;
}
export declare function startConsoleBackend(options: { configDir: string; rendererDir?: string; port?: number; reconnectMaxMs?: number; onLog?: (text: string) => void }): Promise<RunningConsoleBackend>;
export declare function consoleApi(backend: { url: string; token: string }, method: string, route: string, body?: unknown): Promise<any>;
