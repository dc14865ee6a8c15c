import { describe, expect, it } from 'vitest';
import { siteFixture } from '../../../test/fixtures.ts';
import { everySiteReason, siteAccess } from './site-access.ts';

describe('siteAccess', () => {
  it('follows the contract route table: a monitor reads, an operator acts, an administrator changes', () => {
    const monitor = siteAccess(siteFixture({ site: 'primary', role: 'monitor' }));
    expect(monitor.can('GET /v1/sessions')).toBe(true);
    expect(monitor.can('POST /v1/sessions/:name/actions/:action')).toBe(false);
    expect(monitor.reason('POST /v1/sessions/:name/actions/:action')).toBe('Needs the operator role; this console is paired with primary as monitor.');

    const operator = siteAccess(siteFixture({ site: 'primary', role: 'operator' }));
    expect(operator.can('POST /v1/sessions/:name/actions/:action')).toBe(true);
    expect(operator.can('POST /v1/flash-sessions')).toBe(true);
    expect(operator.reason('DELETE /v1/volumes/:name')).toBe('Needs the administrator role; this console is paired with primary as operator.');

    const administrator = siteAccess(siteFixture({ role: 'administrator' }));
    expect(administrator.reason('DELETE /v1/volumes/:name')).toBeNull();
    expect(administrator.reason('POST /v1/pairing-tokens')).toBeNull();
  });

  it('hides nothing while the role is unknown (the agent still refuses what it does not allow)', () => {
    expect(siteAccess(undefined).can('DELETE /v1/volumes/:name')).toBe(true);
    expect(siteAccess(siteFixture({ role: null })).reason('DELETE /v1/volumes/:name')).toBeNull();
  });

  it('for an action any site may take: a reason only when no site allows it', () => {
    const primary = siteFixture({ id: 'a', site: 'primary', role: 'monitor' });
    const secondary = siteFixture({ id: 'b', site: 'secondary', role: 'operator' });
    expect(everySiteReason([primary, secondary], 'POST /v1/flash-sessions')).toBeNull();
    expect(everySiteReason([primary, secondary], 'POST /v1/sessions')).toBe(
      'Needs the administrator role at a site; this console is paired as monitor or operator at every site.',
    );
    expect(everySiteReason([primary], 'POST /v1/flash-sessions')).toBe('Needs the operator role; this console is paired with primary as monitor.');
    expect(everySiteReason([], 'POST /v1/sessions')).toBeNull();
  });
});
