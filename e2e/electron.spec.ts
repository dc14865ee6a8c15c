import { _electron as electron, expect, test } from '@playwright/test';
import { createRequire } from 'node:module';
import path from 'node:path';

/** The path of the Electron binary, or why there is none. */
function electronBinary(): { path: string } | { reason: string } {
  try {
    const binary: unknown = createRequire(import.meta.url)('electron');
    return typeof binary === 'string' ? { path: binary } : { reason: 'the electron package did not name a binary' };
  } catch (error) {
    return { reason: `no Electron binary on this machine (${(error as Error).message}); it is installed with ELECTRON_SKIP_BINARY_DOWNLOAD=1 where GitHub downloads are blocked` };
  }
}

test('the desktop app starts, runs its backend and shows the console', async ({}, testInfo) => {
  const binary = electronBinary();
  test.skip('reason' in binary, 'reason' in binary ? binary.reason : '');
  if (!('path' in binary)) return;
  const configDir = testInfo.outputPath('config');
  const app = await electron.launch({
    executablePath: binary.path,
    args: [path.resolve(import.meta.dirname, '..')],
    env: { ...process.env, TANDEM_CONFIG_DIR: configDir },
  });
  const window = await app.firstWindow();
  await expect(window.getByRole('heading', { name: 'Tandem' })).toBeVisible();
  await expect(window.getByTestId('sites-empty')).toBeVisible();
  const isolated = await window.evaluate(() => typeof (globalThis as { require?: unknown }).require === 'undefined');
  expect(isolated).toBe(true);
  await window.screenshot({ path: testInfo.outputPath('electron.png') });
  await app.close();
});
