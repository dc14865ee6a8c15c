import { app, BrowserWindow, dialog, Notification } from 'electron';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startBackend, type RunningBackend } from './backend/backend.ts';
import { handleIpc } from './app/ipc-main.ts';
import { senderIsFrom } from './app/ipc-sender.ts';
import { createMainWindow, preloadPath } from './app/main-window.ts';
import { installMenu } from './app/menu.ts';
import { safeStorageSecretBox } from './app/safe-storage-secret-box.ts';

/**
 * The Electron main process: one instance, the console backend in-process,
 * one window loaded from the backend.
 */
let backend: RunningBackend | undefined;
let mainWindow: BrowserWindow | undefined;

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on('second-instance', () => {
    if (!mainWindow) return;
    if (mainWindow.isMinimized()) mainWindow.restore();
    mainWindow.focus();
  });
  app.on('window-all-closed', () => app.quit());
  app.on('will-quit', (event) => {
    if (!backend) return;
    event.preventDefault();
    const closing = backend;
    backend = undefined;
    void closing.close().finally(() => app.quit());
  });
  app.on('web-contents-created', (_event, contents) => {
    contents.setWindowOpenHandler(() => ({ action: 'deny' }));
  });
  void app.whenReady().then(start).catch((error: unknown) => {
    dialog.showErrorBox('Tandem could not start', String(error));
    app.exit(1);
  });
}

async function start(): Promise<void> {
  const configDir = process.env.TANDEM_CONFIG_DIR ?? app.getPath('userData');
  backend = await startBackend({
    configDir,
    rendererDir: path.join(import.meta.dirname, '../renderer'),
    secrets: safeStorageSecretBox((message) => console.warn(message)),
    log: (message) => console.error(message),
  });
  const running = backend;
  const trusted = senderIsFrom(running.url);
  handleIpc('backend:endpoint', trusted, () => ({ url: running.url, token: running.token }));
  handleIpc('dialog:save-file', trusted, async (request, event) => {
    const owner = BrowserWindow.fromWebContents(event.sender);
    const options = { defaultPath: path.basename(String(request.suggestedName)), filters: request.filters };
    const choice = owner ? await dialog.showSaveDialog(owner, options) : await dialog.showSaveDialog(options);
    if (choice.canceled || !choice.filePath) return { saved: false, path: null };
    await writeFile(choice.filePath, Buffer.from(String(request.content), request.encoding === 'base64' ? 'base64' : 'utf8'));
    return { saved: true, path: choice.filePath };
  });
  // Alerts from the notification centre (renderer/src/features/alerts): untrusted text, shown as plain text, bounded.
  handleIpc('notification:show', trusted, (request: unknown) => {
    const { title, body } = (request ?? {}) as { title?: unknown; body?: unknown };
    if (typeof title !== 'string' || typeof body !== 'string' || !Notification.isSupported()) return false;
    const notification = new Notification({ title: title.slice(0, 200), body: body.slice(0, 1000) });
    notification.on('click', () => {
      if (!mainWindow) return;
      if (mainWindow.isMinimized()) mainWindow.restore();
      mainWindow.focus();
    });
    notification.show();
    return true;
  });
  installMenu();
  mainWindow = await createMainWindow({
    backendUrl: running.url,
    token: running.token,
    stateDir: configDir,
    preloadPath: preloadPath(import.meta.dirname),
  });
  mainWindow.on('closed', () => {
    mainWindow = undefined;
  });
}
