import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The contract is shared by the agent, the console backend and the renderer,
 * so it may use nothing from Node or the DOM. What it imports is checked by
 * the import boundaries (import-boundaries.test.ts, dependency-cruiser: only
 * the contract itself and zod); what no import rule sees, the globals of Node
 * and the browser, is checked here. Test files are exempt: they run in Node.
 */
const contractDir = import.meta.dirname;

const domGlobals = ['window', 'document', 'navigator', 'localStorage', 'sessionStorage', 'HTMLElement', 'fetch', 'WebSocket', 'process', 'Buffer', '__dirname', 'require'];

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((entry) => entry.isFile() && /\.(ts|tsx|mts|js|mjs)$/.test(entry.name) && !/\.test\.(ts|tsx)$/.test(entry.name))
    .map((entry) => path.join(entry.parentPath, entry.name));
}

/** Code with comments and string literals blanked, so only real identifiers are checked. */
export function codeOnly(source: string): string {
  return source
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/\/\/[^\n]*/g, ' ')
    .replace(/'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"|`(?:\\.|[^`\\])*`/g, "''");
}

export function layeringViolations(source: string): string[] {
  const violations: string[] = [];
  const code = codeOnly(source);
  for (const name of domGlobals) {
    if (new RegExp(`(?<![.\\w$])${name}(?![\\w$])\\s*[.([]`).test(code) || new RegExp(`typeof\\s+${name}\\b`).test(code)) {
      violations.push(`uses the global ${name}`);
    }
  }
  return violations;
}

describe('contract layering', () => {
  it('uses no global of Node or the DOM', async () => {
    const files = await sourceFiles(contractDir);
    expect(files.length).toBeGreaterThan(0);
    const report: string[] = [];
    for (const file of files) {
      for (const violation of layeringViolations(await readFile(file, 'utf8'))) report.push(`${path.relative(contractDir, file)} ${violation}`);
    }
    expect(report).toEqual([]);
  });

  it('catches forbidden globals', () => {
    expect(layeringViolations('const w = window.innerWidth;')).toEqual(['uses the global window']);
    expect(layeringViolations('document.title = "x";')).toEqual(['uses the global document']);
    expect(layeringViolations("const b = Buffer.from('x');")).toEqual(['uses the global Buffer']);
  });

  it('allows the words in comments or strings', () => {
    const source = "import { z } from 'zod';\nimport { x } from './sizes.ts';\n// the window of retention\nconst text = 'document the process';";
    expect(layeringViolations(source)).toEqual([]);
  });
});
