import type { ChildProcess } from 'node:child_process';

export declare const repoRoot: string;
export declare const agentBin: string;
export declare function freePort(): Promise<number>;
export declare function agentCli(args: string[], options?: { timeoutMs?: number }): Promise<string>;
export declare function isInitialized(dataDir: string): Promise<boolean>;
export declare function initAgent(options: { dataDir: string; site: string; trackSize?: string }): Promise<boolean>;
export declare function pairingToken(dataDir: string): Promise<{ token: string; expiresAt: string; certificateFingerprint: string }>;
export interface RunningAgent {
  process: ChildProcess;
  apiAddress: string;
  nbdAddress: string;
  /** The peer link's address (mirroring between sites). */
  linkAddress: string;
  dataDir: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(): Promise<void>;
}
export declare function startAgent(options: { dataDir: string; apiPort?: number; nbdPort?: number; linkPort?: number; onOutput?: (text: string) => void; env?: Record<string, string> }): Promise<RunningAgent>;
