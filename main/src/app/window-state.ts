import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';

const WindowStateSchema = z.object({
  x: z.number().int().optional(),
  y: z.number().int().optional(),
  width: z.number().int().min(400),
  height: z.number().int().min(300),
  maximized: z.boolean(),
});
export type WindowState = z.infer<typeof WindowStateSchema>;

const fallback: WindowState = { width: 1280, height: 820, maximized: false };

/** Remembered window bounds, in window-state.json beside the site registry. */
export async function loadWindowState(dir: string): Promise<WindowState> {
  try {
    const parsed = WindowStateSchema.safeParse(JSON.parse(await readFile(path.join(dir, 'window-state.json'), 'utf8')) as unknown);
    return parsed.success ? parsed.data : fallback;
  } catch {
    return fallback;
  }
}

export async function saveWindowState(dir: string, state: WindowState): Promise<void> {
  await writeFile(path.join(dir, 'window-state.json'), JSON.stringify(state), { mode: 0o600 });
}

/** True when the saved position is still on a connected display (a monitor may have gone). */
export function isVisibleOn(state: WindowState, displays: { x: number; y: number; width: number; height: number }[]): boolean {
  if (state.x === undefined || state.y === undefined) return false;
  const { x, y } = state;
  return displays.some((area) => x >= area.x - 50 && y >= area.y - 50 && x < area.x + area.width - 100 && y < area.y + area.height - 100);
}
