import path from 'node:path';
import { BrowserWindow, screen, session } from 'electron';
import { isVisibleOn, loadWindowState, saveWindowState } from './window-state.ts';

/**
 * The console window: sandboxed, isolated, no Node, loading the page the
 * backend serves. Navigation and new windows are locked to that origin;
 * every permission request is refused.
 */
export async function createMainWindow(options: { backendUrl: string; token: string; stateDir: string; preloadPath: string }): Promise<BrowserWindow> {
  const state = await loadWindowState(options.stateDir);
  const visible = isVisibleOn(state, screen.getAllDisplays().map((display) => display.workArea));
  const window = new BrowserWindow({
    width: state.width,
    height: state.height,
    ...(visible ? { x: state.x, y: state.y } : {}),
    minWidth: 900,
    minHeight: 600,
    show: false,
    title: 'Tandem',
    webPreferences: {
      preload: options.preloadPath,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      spellcheck: false,
    },
  });
  if (state.maximized) window.maximize();

  const origin = new URL(options.backendUrl).origin;
  lockNavigation(window, origin);
  session.defaultSession.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));

  window.once('ready-to-show', () => window.show());
  window.on('close', () => {
    const bounds = window.getNormalBounds();
    void saveWindowState(options.stateDir, { ...bounds, maximized: window.isMaximized() });
  });
  // The token travels in the fragment, which never reaches a server or a log; the preload also offers it.
  await window.loadURL(`${options.backendUrl}/#token=${options.token}`);
  return window;
}

function lockNavigation(window: BrowserWindow, origin: string): void {
  const contents = window.webContents;
  const sameOrigin = (url: string) => {
    try {
      return new URL(url).origin === origin;
    } catch {
      return false;
    }
  };
  contents.on('will-navigate', (event, url) => {
    if (!sameOrigin(url)) event.preventDefault();
  });
  contents.on('will-redirect', (event, url) => {
    if (!sameOrigin(url)) event.preventDefault();
  });
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.setWindowOpenHandler(() => ({ action: 'deny' }));
}

export function preloadPath(mainDir: string): string {
  return path.join(mainDir, '../preload/index.cjs');
}
