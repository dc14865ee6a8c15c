import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isVisibleOn, loadWindowState, saveWindowState } from './window-state.ts';

describe('window state', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tandem-window-'));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('remembers bounds and falls back to defaults on a missing or broken file', async () => {
    expect(await loadWindowState(dir)).toEqual({ width: 1280, height: 820, maximized: false });
    await saveWindowState(dir, { x: 10, y: 20, width: 1000, height: 700, maximized: true });
    expect(await loadWindowState(dir)).toEqual({ x: 10, y: 20, width: 1000, height: 700, maximized: true });
    await writeFile(path.join(dir, 'window-state.json'), '{"width": 5}');
    expect((await loadWindowState(dir)).width).toBe(1280);
  });

  it('does not put a window on a display that is gone', () => {
    const display = { x: 0, y: 0, width: 1920, height: 1080 };
    expect(isVisibleOn({ x: 100, y: 100, width: 800, height: 600, maximized: false }, [display])).toBe(true);
    expect(isVisibleOn({ x: 2500, y: 100, width: 800, height: 600, maximized: false }, [display])).toBe(false);
    expect(isVisibleOn({ width: 800, height: 600, maximized: false }, [display])).toBe(false);
  });
});
