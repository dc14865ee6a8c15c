import { fireEvent, screen, within } from '@testing-library/react';
import { beforeEach, describe, expect, it } from 'vitest';
import { volumeFixture } from '../../../test/fixtures.ts';
import { renderWithBackend } from '../../../test/render.tsx';
import { alpha } from '../../sessions/hooks/session-fixtures.test-helpers.ts';
import { flashPairFixture, flashSessionFixture } from '../hooks/flash-fixtures.test-helpers.ts';
import { useFlashUi } from '../hooks/flash-ui-store.ts';
import { FlashWizardHost } from './FlashWizardHost.tsx';

const gib = 1024 ** 3;
const existing = flashSessionFixture({ name: 'nightly', pairs: [flashPairFixture({ source: 'db', target: 'db-pit' })] });
const established = flashSessionFixture({
  name: 'before-upgrade',
  state: 'copying',
  pairs: [flashPairFixture({ id: 'fp7', source: 'db', target: 'spare', copiedTracks: 8192, percent: 50 }), flashPairFixture({ id: 'fp8', source: 'logs', target: 'logs-pit', copiedTracks: 0, percent: 0 })],
  copyBytesPerSecond: 40 * 1024 * 1024,
  etaSeconds: 42,
});

function routes(extra: Record<string, [number, unknown]> = {}) {
  return {
    'GET /api/sites': [200, { sites: [alpha] }],
    'GET /api/sites/agent-a/volumes': [
      200,
      {
        volumes: [
          volumeFixture('db', { sizeBytes: gib, allocatedBytes: 4 * 1024 * 1024 }),
          volumeFixture('db-pit', { sizeBytes: gib }),
          volumeFixture('spare', { sizeBytes: gib, allocatedBytes: 64 * 1024 * 1024 }),
          volumeFixture('logs', { sizeBytes: gib }),
          volumeFixture('logs-pit', { sizeBytes: gib }),
          volumeFixture('big', { sizeBytes: 2 * gib }),
        ],
      },
    ],
    'GET /api/sites/agent-a/flash-sessions': [200, { sessions: [existing] }],
    'GET /api/sites/agent-a/sessions': [200, { sessions: [] }],
    'POST /api/sites/agent-a/flash-sessions': [201, established],
    'GET /api/sites/agent-a/flash-sessions/before-upgrade/pairs/fp7/track-map': [
      200,
      { session: 'before-upgrade', pair: 'fp7', target: 'spare', trackSize: 65536, trackCount: 16384, start: 0, count: 16384, bucketTracks: 4, buckets: 4096, runs: [[2048, 4], [2048, 0]] },
    ],
    ...extra,
  } as Record<string, [number, unknown]>;
}

const button = (dialog: HTMLElement, name: string) => within(dialog).getByRole('button', { name });
const options = (select: HTMLElement) => [...(select as HTMLSelectElement).options].map((option) => option.value);

describe('FlashCopyWizard', () => {
  beforeEach(() => useFlashUi.setState({ wizardOpen: true, startSiteId: 'agent-a', startSource: null }));

  it('offers only compatible targets, names the target in its warning, and establishes a consistent group with the chosen options', async () => {
    const calls: string[] = [];
    renderWithBackend(<FlashWizardHost />, routes(), calls);
    const dialog = await screen.findByRole('dialog', { name: 'Flash copy' });
    expect(button(dialog, 'Next')).toBeDisabled();
    await within(dialog).findByRole('option', { name: /^db \(1 GiB, 4 MiB written\)/ });
    // db-pit is the target of nightly: not offered as a source.
    expect(options(within(dialog).getByLabelText(/^Source volume/))).toEqual(['', 'db', 'spare', 'logs', 'logs-pit', 'big']);
    expect(within(dialog).getByTestId('flash-source-refused')).toHaveTextContent('db-pit (the target of db in flash session nightly)');
    fireEvent.change(within(dialog).getByLabelText(/^Source volume/), { target: { value: 'db' } });
    fireEvent.click(button(dialog, 'Next'));

    const target = within(dialog).getByLabelText('Target volume');
    // Not db itself, not db-pit (already a target), not big (other size).
    expect(options(target)).toEqual(['', 'spare', 'logs', 'logs-pit']);
    expect(within(dialog).getByTestId('flash-target-refused')).toHaveTextContent('db-pit (already the target of db in flash session nightly); big (2 GiB, not 1 GiB)');
    expect(button(dialog, 'Next')).toBeDisabled();
    fireEvent.change(target, { target: { value: 'spare' } });
    const warning = within(dialog).getByTestId('flash-target-warning');
    expect(warning).toHaveTextContent('The data on spare will be replaced');
    expect(warning).toHaveTextContent('Everything on spare is replaced by the point-in-time image of db');
    expect(warning).toHaveTextContent('spare holds 64 MiB of data now; it will be gone.');
    fireEvent.click(button(dialog, 'Next'));

    fireEvent.change(within(dialog).getByLabelText(/^Session name/), { target: { value: 'before upgrade' } });
    expect(within(dialog).getByText(/letters, digits, dot, dash and underscore/)).toBeInTheDocument();
    expect(button(dialog, 'Next')).toBeDisabled();
    fireEvent.change(within(dialog).getByLabelText(/^Session name/), { target: { value: 'before-upgrade' } });
    fireEvent.click(within(dialog).getByLabelText(/^Incremental/));
    fireEvent.click(within(dialog).getByLabelText('Limited, to spare host I/O'));
    fireEvent.change(within(dialog).getByLabelText('Rate (MiB/s)'), { target: { value: '40' } });
    expect(within(dialog).getByLabelText(/^Preserve mirror/)).toBeDisabled();

    // A second pair for the consistent group: its target list excludes what the group already uses.
    fireEvent.click(button(dialog, 'Add another pair…'));
    fireEvent.change(within(dialog).getByLabelText('Another source'), { target: { value: 'logs' } });
    expect(options(within(dialog).getByLabelText('Its target'))).toEqual(['', 'logs-pit']);
    fireEvent.change(within(dialog).getByLabelText('Its target'), { target: { value: 'logs-pit' } });
    fireEvent.click(button(dialog, 'Add pair to the group'));
    expect(within(dialog).getByTestId('flash-group-pair-logs-pit')).toHaveTextContent('2. logs → logs-pit');
    fireEvent.click(button(dialog, 'Next'));

    const review = within(dialog).getByTestId('flash-review');
    expect(review).toHaveTextContent('Flash copy before-upgrade at alpha, 2 pairs at one point in time');
    expect(review).toHaveTextContent('Background copy at up to 40 MiB/s; incremental');
    expect(within(dialog).getByTestId('flash-review-warning')).toHaveTextContent('Replaces all data on spare, logs-pit');
    fireEvent.click(button(dialog, 'Establish flash copy'));
    await expect.poll(() => calls.filter((call) => call.startsWith('POST'))).toEqual([
      'POST /api/sites/agent-a/flash-sessions ' +
        JSON.stringify({
          backgroundCopy: true,
          rateMiBps: 40,
          incremental: true,
          writeInhibitTarget: false,
          preserveMirror: false,
          name: 'before-upgrade',
          pairs: [
            { source: 'db', target: 'spare' },
            { source: 'logs', target: 'logs-pit' },
          ],
          holdTimeoutMs: 2000,
          coordinated: false,
        }),
    ]);

    const progress = await within(dialog).findByTestId('flash-progress');
    expect(within(progress).getByTestId('flash-state')).toHaveTextContent('Copying');
    expect(within(progress).getByTestId('flash-percent')).toHaveTextContent('25 %');
    expect(within(progress).getByTestId('flash-rate')).toHaveTextContent('40 MiB/s');
    expect(within(progress).getByTestId('flash-eta')).toHaveTextContent('42 s');
    expect(within(progress).getByTestId('flash-pair-spare')).toHaveTextContent('50 % · 8,192 / 16,384 tracks');
    expect(await within(progress).findByTestId('flash-track-totals')).toHaveTextContent('8,192 tracks copied, 8,192 not yet copied');
  });

  it('says why a flash target cannot be the source when the wizard starts from it', async () => {
    useFlashUi.setState({ wizardOpen: true, startSiteId: 'agent-a', startSource: 'db-pit' });
    renderWithBackend(<FlashWizardHost />, routes());
    const dialog = await screen.findByRole('dialog', { name: 'Flash copy' });
    expect(await within(dialog).findByTestId('flash-source-not-allowed')).toHaveTextContent('db-pit cannot be a flash source: it is the target of db in flash session nightly');
    expect(button(dialog, 'Next')).toBeDisabled();
  });

  it('starts from a volume with its source chosen, and shows a refused establish with its problem code', async () => {
    useFlashUi.setState({ wizardOpen: true, startSiteId: 'agent-a', startSource: 'logs' });
    renderWithBackend(<FlashWizardHost />, routes({ 'POST /api/sites/agent-a/flash-sessions': [409, { problem: 'volume-busy', message: 'logs-pit is already a flash target' }] }));
    const dialog = await screen.findByRole('dialog', { name: 'Flash copy' });
    const target = await within(dialog).findByLabelText('Target volume');
    // db is the source of nightly and db-pit its target: neither may be overwritten.
    await expect.poll(() => options(target)).toEqual(['', 'spare', 'logs-pit']);
    fireEvent.change(target, { target: { value: 'logs-pit' } });
    fireEvent.click(button(dialog, 'Next'));
    fireEvent.click(within(dialog).getByLabelText(/^Background copy: copy every track/));
    expect(within(dialog).queryByLabelText('Rate (MiB/s)')).toBeNull();
    fireEvent.click(button(dialog, 'Next'));
    expect(within(dialog).getByTestId('flash-review')).toHaveTextContent('No-copy: only tracks overwritten at the source are copied');
    fireEvent.click(button(dialog, 'Establish flash copy'));
    expect(await within(dialog).findByTestId('problem')).toHaveTextContent('volume-busy');
    expect(within(dialog).getByTestId('problem')).toHaveTextContent('logs-pit is already a flash target');
  });

  it('creates a target of the source size at its site when none fits, and chooses it', async () => {
    useFlashUi.setState({ wizardOpen: true, startSiteId: 'agent-a', startSource: 'big' });
    const calls: string[] = [];
    const fake = routes({ 'POST /api/sites/agent-a/volumes': [201, volumeFixture('big-pit', { sizeBytes: 2 * gib })] });
    renderWithBackend(<FlashWizardHost />, fake, calls);
    const dialog = await screen.findByRole('dialog', { name: 'Flash copy' });
    expect(await within(dialog).findByTestId('flash-no-target')).toHaveTextContent('No volume here can take a flash copy of big');
    fireEvent.click(button(dialog, 'Create a volume of 2 GiB at alpha…'));
    const volumes = fake['GET /api/sites/agent-a/volumes'][1] as { volumes: unknown[] };
    fake['GET /api/sites/agent-a/volumes'] = [200, { volumes: [...volumes.volumes, volumeFixture('big-pit', { sizeBytes: 2 * gib })] }];
    fireEvent.click(button(dialog, 'Create big-pit'));
    await expect.poll(() => calls).toContain(`POST /api/sites/agent-a/volumes {"name":"big-pit","sizeBytes":${2 * gib}}`);
    await expect.poll(() => (within(dialog).getByLabelText('Target volume') as HTMLSelectElement).value).toBe('big-pit');
    expect(button(dialog, 'Next')).not.toBeDisabled();
    expect(button(dialog, 'Cancel')).toBeInTheDocument();
  });
});
