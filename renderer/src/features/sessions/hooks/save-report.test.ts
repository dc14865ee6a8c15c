import { afterEach, describe, expect, it, vi } from 'vitest';
import { saveReport } from './save-report.ts';

afterEach(() => {
  delete (window as unknown as { tandem?: unknown }).tandem;
  vi.restoreAllMocks();
});

describe('saveReport', () => {
  it('uses the save dialog of the preload bridge in Electron, passing binary content as base64', async () => {
    const saveFile = vi.fn(async () => ({ saved: true, path: '/tmp/r.pdf' }));
    (window as unknown as { tandem: unknown }).tandem = { desktop: true, saveFile, backendEndpoint: vi.fn() };
    const where = await saveReport({ fileName: 'r.pdf', mimeType: 'application/pdf', encoding: 'base64', content: 'JVBERg==' });
    expect(where).toBe('/tmp/r.pdf');
    expect(saveFile).toHaveBeenCalledWith({ suggestedName: 'r.pdf', content: 'JVBERg==', encoding: 'base64', filters: [{ name: 'PDF', extensions: ['pdf'] }] });
  });

  it('downloads in a browser', async () => {
    const clicked: string[] = [];
    vi.spyOn(HTMLAnchorElement.prototype, 'click').mockImplementation(function (this: HTMLAnchorElement) {
      clicked.push(this.download);
    });
    const created = vi.spyOn(URL, 'createObjectURL').mockReturnValue('blob:x');
    await saveReport({ fileName: 'r.csv', mimeType: 'text/csv', encoding: 'utf8', content: 'a,b\n' });
    expect(clicked).toEqual(['r.csv']);
    const blob = created.mock.calls[0][0] as Blob;
    expect(await blob.text()).toBe('a,b\n');
  });
});
