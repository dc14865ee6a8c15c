import os from 'node:os';
import path from 'node:path';

/**
 * The directory holding the console's site registry. `TANDEM_CONFIG_DIR`
 * wins (tests and the demo use it); otherwise the platform's per-user config
 * dir. Electron passes `app.getPath('userData')` instead.
 */
export function defaultConfigDir(env: NodeJS.ProcessEnv = process.env, platform = process.platform): string {
  if (env.TANDEM_CONFIG_DIR) return path.resolve(env.TANDEM_CONFIG_DIR);
  const home = os.homedir();
  if (platform === 'win32') return path.join(env.APPDATA ?? path.join(home, 'AppData', 'Roaming'), 'Tandem');
  if (platform === 'darwin') return path.join(home, 'Library', 'Application Support', 'Tandem');
  return path.join(env.XDG_CONFIG_HOME ?? path.join(home, '.config'), 'tandem');
}
