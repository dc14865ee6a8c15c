import type { BackendEndpoint } from './console-api.ts';

/** Save-file request from the renderer: the main process shows the dialog and writes the file. */
export interface SaveFileRequest {
  suggestedName: string;
  /** Text content (CSV/JSON reports), or base64 of binary content (PDF) with `encoding: 'base64'`. */
  content: string;
  encoding?: 'utf8' | 'base64';
  filters?: { name: string; extensions: string[] }[];
}

export interface SaveFileResult {
  saved: boolean;
  path: string | null;
}

/** A desktop notification the renderer asks the main process to show (Electron `Notification`). */
export interface DesktopNotification {
  title: string;
  body: string;
}

/**
 * Every IPC channel between preload and main, declared once (as GitHub
 * Desktop's ipc-shared.ts): channel -> [argument, result]. Main and preload
 * only reach ipcMain/ipcRenderer through wrappers typed by this map.
 */
export interface IpcChannels {
  'backend:endpoint': [void, BackendEndpoint];
  'dialog:save-file': [SaveFileRequest, SaveFileResult];
  'notification:show': [DesktopNotification, boolean];
}

export type IpcChannel = keyof IpcChannels;

/** What the preload exposes to the renderer as `window.tandem`. */
export interface TandemBridge {
  readonly desktop: true;
  backendEndpoint(): Promise<BackendEndpoint>;
  saveFile(request: SaveFileRequest): Promise<SaveFileResult>;
  /** Shows a desktop notification; false when the system has none. */
  showNotification(notification: DesktopNotification): Promise<boolean>;
}
