import { Alert, Button, Group, NativeSelect, Stack, Text } from '@mantine/core';
import { roleNeeded } from '@tandem/contract';
import { RoleGated } from '../../../components/RoleGated.tsx';
import { siteAccess } from '../../sites/hooks/site-access.ts';
import { useEffect } from 'react';
import type { SiteSummary } from '../../../../../main/src/shared/console-api.ts';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { usePairSites, usePeers } from '../hooks/use-sessions.ts';

/** H1 and H2 sites; only a paired couple may go on, and an unpaired one can be paired right here. */
export function SitePairPicker({
  sites,
  h1SiteId,
  h2SiteId,
  onChange,
  onPaired,
}: {
  sites: SiteSummary[];
  h1SiteId: string | null;
  h2SiteId: string | null;
  onChange: (h1SiteId: string | null, h2SiteId: string | null) => void;
  onPaired: (paired: boolean) => void;
}) {
  const peers = usePeers(h1SiteId);
  const pair = usePairSites();
  const h1 = sites.find((site) => site.id === h1SiteId);
  const h2 = sites.find((site) => site.id === h2SiteId);
  const paired = Boolean(h2 && peers.data?.some((peer) => peer.agentId === h2.id || peer.site === h2.site));
  useEffect(() => onPaired(paired), [paired, onPaired]);
  const options = [{ value: '', label: 'choose a site' }, ...sites.map((site) => ({ value: site.id, label: `${site.site} (${site.address})` }))];
  // The session is created at H1: a site where this console's role cannot create one is shown, not offered.
  const h1Options = options.map((option) => {
    const site = sites.find((each) => each.id === option.value);
    const reason = site ? siteAccess(site).reason('POST /v1/sessions') : null;
    return reason ? { ...option, label: `${option.label}: needs the ${roleNeeded('POST /v1/sessions')} role`, disabled: true } : option;
  });
  const h1Refused = h1 ? siteAccess(h1).reason('POST /v1/sessions') : null;

  return (
    <Stack mt="md">
      <Group grow>
        <NativeSelect label="H1 site (source)" data={h1Options} value={h1SiteId ?? ''} onChange={(event) => onChange(event.currentTarget.value || null, h2SiteId)} />
        <NativeSelect label="H2 site (target)" data={options} value={h2SiteId ?? ''} onChange={(event) => onChange(h1SiteId, event.currentTarget.value || null)} />
      </Group>
      {h1 && h2 && h1.id === h2.id && <Text c="red" size="sm">Choose two different sites.</Text>}
      {h1Refused && (
        <Text c="red" size="sm" data-testid="h1-role-refused">
          {h1Refused} A session is created at its H1 site: choose another H1 site, or pair this console with {h1?.site} as administrator.
        </Text>
      )}
      {peers.error && <ProblemAlert error={peers.error} title={`The peers of ${h1?.site} could not be read`} />}
      {h1 && h2 && h1.id !== h2.id && peers.data && (
        paired ? (
          <Text size="sm" c="green" data-testid="sites-paired">
            {h1.site} and {h2.site} are paired: their agents trust each other's certificates.
          </Text>
        ) : (
          <Alert color="yellow" title={`${h1.site} and ${h2.site} are not paired`}>
            <Stack gap="xs">
              <Text size="sm">
                Pairing makes the two agents exchange and pin each other's certificates, so the mirroring link runs over mutual TLS. The console does it with
                its own credentials for both sites.
              </Text>
              {pair.error && <ProblemAlert error={pair.error} title="Pairing did not work" />}
              <Group>
                <RoleGated reason={siteAccess(h1).reason('POST /v1/peers') ?? siteAccess(h2).reason('POST /v1/pairing-tokens')}>
                  <Button size="xs" loading={pair.isPending} onClick={() => pair.mutate({ siteId: h1.id, otherSiteId: h2.id })}>
                    Pair {h1.site} with {h2.site}
                  </Button>
                </RoleGated>
              </Group>
            </Stack>
          </Alert>
        )
      )}
    </Stack>
  );
}
