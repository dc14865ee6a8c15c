import { createRequire } from 'node:module';
import path from 'node:path';
import { getDocument } from 'pdfjs-dist/legacy/build/pdf.mjs';

/** pdf.js's own metrics of the 14 standard PDF fonts (the reports use Helvetica). */
const standardFontDataUrl = `${path.join(path.dirname(createRequire(import.meta.url).resolve('pdfjs-dist/package.json')), 'standard_fonts')}/`;

/**
 * The text of a PDF as a reader sees it, parsed by pdf.js (Mozilla's PDF
 * renderer): one line per text line of every page, runs on one line joined
 * by a space unless they touch.
 */
export async function pdfLines(pdf: Buffer): Promise<string[]> {
  const document = await getDocument({ data: new Uint8Array(pdf), useSystemFonts: false, isEvalSupported: false, standardFontDataUrl }).promise;
  const lines: string[] = [];
  try {
    for (let number = 1; number <= document.numPages; number++) {
      const page = await document.getPage(number);
      const content = await page.getTextContent();
      // Group runs by their baseline (y), then order each line by x.
      const rows = new Map<number, Array<{ x: number; width: number; text: string }>>();
      for (const item of content.items) {
        if (!('str' in item) || item.str.trim() === '') continue;
        const y = Math.round(item.transform[5]);
        const row = rows.get(y) ?? [];
        row.push({ x: item.transform[4], width: item.width, text: item.str });
        rows.set(y, row);
      }
      for (const y of [...rows.keys()].sort((a, b) => b - a)) {
        // Runs that touch belong to one word (pdfmake breaks text at hyphens); apart, they are separate words or cells.
        let line = '';
        let end = -Infinity;
        for (const run of rows.get(y)!.sort((a, b) => a.x - b.x)) {
          line += (line && run.x - end > 0.5 ? ' ' : '') + run.text;
          end = run.x + run.width;
        }
        lines.push(line);
      }
    }
  } finally {
    await document.destroy();
  }
  return lines;
}
