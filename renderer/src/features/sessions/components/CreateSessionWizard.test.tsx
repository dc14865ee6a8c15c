import { fireEvent, screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { volumeFixture } from '../../../test/fixtures.ts';
import { renderWithBackend } from '../../../test/render.tsx';
import { alpha, beta, sessionFixture } from '../hooks/session-fixtures.test-helpers.ts';
import { CreateSessionWizard } from './CreateSessionWizard.tsx';

const gib = 1024 ** 3;
const peer = { agentId: 'agent-b', site: 'beta', linkAddress: 'x:1', apiAddress: 'x:2', caFingerprint: 'F', pairedAt: 'now', link: 'connected' };

function routes(peers: unknown[], extra: Record<string, [number, unknown]> = {}) {
  return {
    'GET /api/sites': [200, { sites: [alpha, beta] }],
    'GET /api/sites/agent-a/peers': [200, { peers }],
    'POST /api/sites/agent-a/peers': [201, peer],
    'GET /api/sites/agent-a/volumes': [200, { volumes: [volumeFixture('db', { sizeBytes: gib }), volumeFixture('logs', { sizeBytes: 2 * gib })] }],
    'GET /api/sites/agent-b/volumes': [200, { volumes: [volumeFixture('db-copy', { sizeBytes: gib }), volumeFixture('big', { sizeBytes: 4 * gib }), volumeFixture('db-snap', { sizeBytes: gib, kind: 'snapshot' })] }],
    'POST /api/sites/agent-a/sessions': [201, sessionFixture({ state: 'defined', pairs: [] })],
    'POST /api/sites/agent-a/sessions/orders/pairs': [201, sessionFixture({ state: 'defined' })],
    ...extra,
  } as Record<string, [number, unknown]>;
}

const next = (dialog: HTMLElement) => fireEvent.click(within(dialog).getByRole('button', { name: 'Next' }));

describe('CreateSessionWizard', () => {
  it('offers to pair two unpaired sites and pairs them through the backend', async () => {
    const calls: string[] = [];
    renderWithBackend(<CreateSessionWizard onClose={() => {}} />, routes([]), calls);
    const dialog = await screen.findByRole('dialog');
    fireEvent.change(within(dialog).getByLabelText('Session name'), { target: { value: 'orders' } });
    fireEvent.click(within(dialog).getByLabelText(/^Async/));
    next(dialog);

    await within(dialog).findByText('alpha and beta are not paired');
    expect(within(dialog).getByRole('button', { name: 'Next' })).toBeDisabled();
    fireEvent.click(within(dialog).getByRole('button', { name: 'Pair alpha with beta' }));
    await expect.poll(() => calls).toContain('POST /api/sites/agent-a/peers {"otherSiteId":"agent-b"}');
  });

  it('lists only H2 volumes of the same size and creates session then copy sets', async () => {
    const calls: string[] = [];
    renderWithBackend(<CreateSessionWizard onClose={() => {}} />, routes([peer]), calls);
    const dialog = await screen.findByRole('dialog');
    fireEvent.change(within(dialog).getByLabelText('Session name'), { target: { value: 'orders' } });
    next(dialog);
    await within(dialog).findByTestId('sites-paired');
    next(dialog);
    const source = await within(dialog).findByLabelText('Volume at alpha');
    fireEvent.change(source, { target: { value: 'db' } });
    const copy = within(dialog).getByLabelText('Copy at beta') as HTMLSelectElement;
    expect([...copy.options].map((option) => option.value)).toEqual(['', 'db-copy']);
    fireEvent.change(copy, { target: { value: 'db-copy' } });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Add copy set' }));
    expect(within(dialog).getByTestId('copy-set-db')).toHaveTextContent('alpha:db → beta:db-copy');
    fireEvent.change(within(dialog).getByLabelText('Volume at alpha'), { target: { value: 'logs' } });
    expect(within(dialog).getByText(/beta has no free volume of exactly 2 GiB/)).toBeInTheDocument();
    next(dialog);
    expect(within(dialog).getByTestId('create-session-review')).toHaveTextContent('from alpha (H1, source) to beta (H2, target), 1 copy set');
    fireEvent.click(within(dialog).getByRole('button', { name: 'Create session' }));
    await expect.poll(() => calls.filter((call) => call.startsWith('POST'))).toEqual([
      'POST /api/sites/agent-a/sessions {"name":"orders","type":"sync","peer":"beta"}',
      'POST /api/sites/agent-a/sessions/orders/pairs {"h1Volume":"db","h2Volume":"db-copy"}',
    ]);
  });

  it('async: a copy set may take its primary at another site paired with H1; volumes of that site, matching size at H2; the review names each primary site', async () => {
    const calls: string[] = [];
    const gamma = { ...alpha, id: 'agent-g', site: 'gamma', address: '127.0.0.1:7003' };
    const gammaPeer = { ...peer, agentId: 'agent-g', site: 'gamma' };
    renderWithBackend(
      <CreateSessionWizard onClose={() => {}} />,
      routes([peer, gammaPeer], {
        'GET /api/sites': [200, { sites: [alpha, beta, gamma] }],
        'GET /api/sites/agent-g/peers': [200, { peers: [{ ...peer, agentId: 'agent-a', site: 'alpha' }] }],
        'GET /api/sites/agent-g/volumes': [200, { volumes: [volumeFixture('ledger', { sizeBytes: 2 * gib }), volumeFixture('db', { sizeBytes: gib })] }],
        'GET /api/sites/agent-b/volumes': [200, { volumes: [volumeFixture('db-copy', { sizeBytes: gib }), volumeFixture('ledger-copy', { sizeBytes: 2 * gib }), volumeFixture('big', { sizeBytes: 4 * gib })] }],
      }),
      calls,
    );
    const dialog = await screen.findByRole('dialog');
    fireEvent.change(within(dialog).getByLabelText('Session name'), { target: { value: 'orders' } });
    fireEvent.click(within(dialog).getByLabelText(/^Async/));
    next(dialog);
    await within(dialog).findByTestId('sites-paired');
    next(dialog);
    fireEvent.change(await within(dialog).findByLabelText('Volume at alpha'), { target: { value: 'db' } });
    fireEvent.change(within(dialog).getByLabelText('Copy at beta'), { target: { value: 'db-copy' } });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Add copy set' }));
    // The secondary is not offered as a primary site.
    const primarySelect = (await within(dialog).findByLabelText(/^Primary site/)) as HTMLSelectElement;
    expect([...primarySelect.options].map((option) => option.value)).toEqual(['alpha', 'gamma']);
    fireEvent.change(primarySelect, { target: { value: 'gamma' } });
    // gamma is not paired with beta: the wizard says so before the agent would refuse.
    expect(await within(dialog).findByTestId('primary-not-paired')).toHaveTextContent('gamma is not paired with beta');
    // gamma's own db is offered (alpha's db is taken only at alpha); the copy must match ledger's size at beta.
    const source = (await within(dialog).findByLabelText('Volume at gamma')) as HTMLSelectElement;
    expect([...source.options].map((option) => option.value)).toEqual(['', 'ledger', 'db']);
    fireEvent.change(source, { target: { value: 'ledger' } });
    const copy = within(dialog).getByLabelText('Copy at beta') as HTMLSelectElement;
    expect([...copy.options].map((option) => option.value)).toEqual(['', 'ledger-copy']);
    fireEvent.change(copy, { target: { value: 'ledger-copy' } });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Add copy set' }));
    expect(within(dialog).getByTestId('copy-set-db')).toHaveTextContent('alpha:db → beta:db-copy');
    expect(within(dialog).getByTestId('copy-set-ledger')).toHaveTextContent('gamma:ledger → beta:ledger-copy');
    next(dialog);
    const review = within(dialog).getByTestId('create-session-review');
    expect(review).toHaveTextContent('from alpha, gamma (H1, sources) to beta (H2, target), 2 copy sets');
    expect(within(review).getByTestId('review-copy-set-ledger')).toHaveTextContent('gamma:ledger → beta:ledger-copy (primary site gamma)');
    expect(within(review).getByTestId('review-copy-set-db')).toHaveTextContent('(primary site alpha)');
    fireEvent.click(within(dialog).getByRole('button', { name: 'Create session' }));
    await expect.poll(() => calls.filter((call) => call.startsWith('POST'))).toEqual([
      'POST /api/sites/agent-a/sessions {"name":"orders","type":"async","peer":"beta"}',
      'POST /api/sites/agent-a/sessions/orders/pairs {"h1Volume":"db","h2Volume":"db-copy"}',
      'POST /api/sites/agent-a/sessions/orders/pairs {"h1Volume":"ledger","h2Volume":"ledger-copy","primaryAgent":"gamma"}',
    ]);
  });
});

describe('CreateSessionWizard: a copy the H2 site lacks', () => {
  it('creates a volume of exactly the source size at the H2 site and takes it as the copy; Cancel on every step', async () => {
    const calls: string[] = [];
    const fake = routes([peer], { 'POST /api/sites/agent-b/volumes': [201, volumeFixture('logs-copy', { sizeBytes: 2 * gib })] });
    renderWithBackend(<CreateSessionWizard onClose={() => {}} />, fake, calls);
    const dialog = await screen.findByRole('dialog');
    expect(within(dialog).getByRole('button', { name: 'Cancel' })).toBeInTheDocument();
    fireEvent.change(within(dialog).getByLabelText('Session name'), { target: { value: 'orders' } });
    next(dialog);
    await within(dialog).findByTestId('sites-paired');
    expect(within(dialog).getByRole('button', { name: 'Cancel' })).toBeInTheDocument();
    next(dialog);
    fireEvent.change(await within(dialog).findByLabelText('Volume at alpha'), { target: { value: 'logs' } });
    // beta has no 2 GiB volume: the wizard offers to make one there.
    expect(within(dialog).getByText(/beta has no free volume of exactly 2 GiB/)).toBeInTheDocument();
    fireEvent.click(within(dialog).getByRole('button', { name: 'Create a volume of 2 GiB at beta…' }));
    expect((within(dialog).getByLabelText('New volume name') as HTMLInputElement).value).toBe('logs-copy');
    fake['GET /api/sites/agent-b/volumes'] = [200, { volumes: [volumeFixture('db-copy', { sizeBytes: gib }), volumeFixture('logs-copy', { sizeBytes: 2 * gib })] }];
    fireEvent.click(within(dialog).getByRole('button', { name: 'Create logs-copy' }));
    await expect.poll(() => calls).toContain(`POST /api/sites/agent-b/volumes {"name":"logs-copy","sizeBytes":${2 * gib}}`);
    await expect.poll(() => (within(dialog).getByLabelText('Copy at beta') as HTMLSelectElement).value).toBe('logs-copy');
    expect(within(dialog).getByRole('button', { name: 'Cancel' })).toBeInTheDocument();
  });

  it('offers as H1 only sites where its role may create a session, and starts at one', async () => {
    const routesWithRoles = {
      ...routes([peer]),
      'GET /api/sites': [200, { sites: [{ ...alpha, role: 'operator' }, { ...beta, role: 'administrator' }] }],
      'GET /api/sites/agent-b/peers': [200, { peers: [{ ...peer, agentId: 'agent-a', site: 'alpha' }] }],
    } as Record<string, [number, unknown]>;
    renderWithBackend(<CreateSessionWizard onClose={() => {}} />, routesWithRoles);
    const dialog = await screen.findByRole('dialog');
    fireEvent.change(within(dialog).getByLabelText('Session name'), { target: { value: 'orders' } });
    next(dialog);
    const h1 = (await within(dialog).findByLabelText('H1 site (source)')) as HTMLSelectElement;
    await expect.poll(() => h1.value).toBe('agent-b');
    const alphaOption = [...h1.options].find((option) => option.value === 'agent-a')!;
    expect(alphaOption.disabled).toBe(true);
    expect(alphaOption.textContent).toContain('needs the administrator role');
    expect((within(dialog).getByLabelText('H2 site (target)') as HTMLSelectElement).value).toBe('agent-a');
    await within(dialog).findByTestId('sites-paired');
    expect(within(dialog).getByRole('button', { name: 'Next' })).not.toBeDisabled();
    // Chosen anyway (an old selection): said, and no way on.
    fireEvent.change(h1, { target: { value: 'agent-a' } });
    fireEvent.change(within(dialog).getByLabelText('H2 site (target)'), { target: { value: 'agent-b' } });
    expect(await within(dialog).findByTestId('h1-role-refused')).toHaveTextContent('Needs the administrator role; this console is paired with alpha as operator.');
    expect(within(dialog).getByRole('button', { name: 'Next' })).toBeDisabled();
  });
});
