import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The contract is shared by the agent, the console backend and the renderer,
 * so it may import nothing from Node, Electron, React or the DOM (VS Code's
 * code-layering rule, as a test). Test files are exempt: they run in Node.
 */
const contractDir = import.meta.dirname;

const forbiddenModules = [/^node:/, /^electron($|\/)/, /^react($|-dom|\/)/, /^(fs|path|os|net|tls|http|https|crypto|child_process|stream|url|util|events|buffer|worker_threads)(\/|$)/];

const domGlobals = ['window', 'document', 'navigator', 'localStorage', 'sessionStorage', 'HTMLElement', 'fetch', 'WebSocket', 'process', 'Buffer', '__dirname', 'require'];

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((entry) => entry.isFile() && /\.(ts|tsx|mts|js|mjs)$/.test(entry.name) && !/\.test\.(ts|tsx)$/.test(entry.name))
    .map((entry) => path.join(entry.parentPath, entry.name));
}

/** Module specifiers of import/export-from statements and dynamic imports. */
export function importedModules(source: string): string[] {
  const found: string[] = [];
  const patterns = [/\bimport\s+(?:type\s+)?(?:[^'"`;]*?\sfrom\s+)?['"]([^'"]+)['"]/g, /\bexport\s+[^'";]*?\sfrom\s+['"]([^'"]+)['"]/g, /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g, /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g];
  for (const pattern of patterns) for (const match of source.matchAll(pattern)) found.push(match[1]);
  return found;
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
  for (const specifier of importedModules(source)) {
    if (forbiddenModules.some((pattern) => pattern.test(specifier))) violations.push(`imports ${specifier}`);
  }
  const code = codeOnly(source);
  for (const name of domGlobals) {
    if (new RegExp(`(?<![.\\w$])${name}(?![\\w$])\\s*[.([]`).test(code) || new RegExp(`typeof\\s+${name}\\b`).test(code)) {
      violations.push(`uses the global ${name}`);
    }
  }
  return violations;
}

describe('contract layering', () => {
  it('imports nothing from Node, Electron, React or the DOM', async () => {
    const files = await sourceFiles(contractDir);
    expect(files.length).toBeGreaterThan(0);
    const report: string[] = [];
    for (const file of files) {
      for (const violation of layeringViolations(await readFile(file, 'utf8'))) report.push(`${path.relative(contractDir, file)} ${violation}`);
    }
    expect(report).toEqual([]);
  });

  it('catches forbidden imports and globals', () => {
    expect(layeringViolations("import fs from 'node:fs';")).toEqual(['imports node:fs']);
    expect(layeringViolations("import { app } from 'electron';")).toEqual(['imports electron']);
    expect(layeringViolations("import { useState } from 'react';")).toEqual(['imports react']);
    expect(layeringViolations("export * from 'react-dom/client';")).toEqual(['imports react-dom/client']);
    expect(layeringViolations("const x = await import('node:path');")).toEqual(['imports node:path']);
    expect(layeringViolations('const w = window.innerWidth;')).toEqual(['uses the global window']);
    expect(layeringViolations('document.title = "x";')).toEqual(['uses the global document']);
    expect(layeringViolations("const b = Buffer.from('x');")).toEqual(['uses the global Buffer']);
  });

  it('allows zod, relative imports, and the words in comments or strings', () => {
    const source = "import { z } from 'zod';\nimport { x } from './sizes.ts';\n// the window of retention\nconst text = 'document the process';";
    expect(layeringViolations(source)).toEqual([]);
  });
});
