import type { ReportFile } from '../../../../../main/src/shared/sessions-api.ts';
import type { TandemBridge } from '../../../../../main/src/shared/ipc-channels.ts';

function bridge(): TandemBridge | undefined {
  return (window as unknown as { tandem?: TandemBridge }).tandem;
}

function bytesOf(file: ReportFile): Uint8Array<ArrayBuffer> {
  if (file.encoding === 'utf8') return new TextEncoder().encode(file.content);
  const binary = atob(file.content);
  const bytes = new Uint8Array(binary.length);
  for (let index = 0; index < binary.length; index++) bytes[index] = binary.charCodeAt(index);
  return bytes;
}

const extensions: Record<string, { name: string; extensions: string[] }> = {
  'text/csv': { name: 'CSV', extensions: ['csv'] },
  'application/json': { name: 'JSON', extensions: ['json'] },
  'application/pdf': { name: 'PDF', extensions: ['pdf'] },
};

/**
 * Saves a report: through the preload's save dialog in Electron, as a
 * download in a browser. Resolves with where it went (null: cancelled).
 */
export async function saveReport(file: ReportFile): Promise<string | null> {
  const desktop = bridge();
  if (desktop) {
    const filter = extensions[file.mimeType];
    const result = await desktop.saveFile({ suggestedName: file.fileName, content: file.content, encoding: file.encoding, filters: filter ? [filter] : undefined });
    return result.saved ? result.path : null;
  }
  const url = URL.createObjectURL(new Blob([bytesOf(file)], { type: file.mimeType }));
  try {
    const link = document.createElement('a');
    link.href = url;
    link.download = file.fileName;
    link.rel = 'noopener';
    document.body.append(link);
    link.click();
    link.remove();
  } finally {
    // Let the browser start the download before the URL goes.
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }
  return file.fileName;
}
