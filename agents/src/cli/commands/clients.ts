import { Argument, type Command } from 'commander';
import { ClientInfoSchema, ClientListSchema, roles, type ClientInfo, type Role } from '@tandem/contract';
import { dataOption, jsonOption } from '../arguments.ts';
import { formatTable, print, printJson } from '../output.ts';
import { withClient, type AdminOptions } from './admin.ts';

function clientTable(clients: ClientInfo[]): string {
  return formatTable(
    ['SERIAL', 'NAME', 'ROLE', 'PAIRED', 'REVOKED'],
    clients.map((client) => [
      client.serial,
      client.name,
      client.roleSource === 'legacy'
        ? `${client.role} (issued before roles)`
        : client.roleSource === 'narrowed'
          ? `${client.role} (narrowed; certificate: ${client.certificateRole})`
          : client.role,
      client.pairedAt,
      client.revokedAt ?? '-',
    ]),
  );
}

/**
 * `tandem-agent clients list|set-role|revoke`: the consoles (and the local
 * admin) holding a client certificate of this agent, with their roles. A
 * console is narrowed below its certificate's role with set-role; a higher
 * role needs a new certificate: revoke it, then pair it again with
 * `tandem-agent token --role ROLE`.
 */
export function registerClientCommands(program: Command): void {
  const command = program.command('clients').description('control API clients (paired consoles, the local admin) and their roles');
  command
    .command('list')
    .description('list the clients with their roles, revoked ones included')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((options: AdminOptions) =>
      withClient(options, async (client) => {
        const { clients } = await client.call('GET', '/v1/clients', ClientListSchema);
        if (options.json) printJson({ clients });
        else print(clients.length === 0 ? 'no clients' : clientTable(clients));
      }),
    );
  command
    .command('set-role')
    .argument('<serial>', 'the client certificate serial (clients list)')
    .addArgument(new Argument('<role>', 'the role it acts as from now on, at most its certificate\'s').choices(roles))
    .description('narrow a client below its certificate\'s role, or bring it back up to it (a higher role: revoke, pair again)')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((serial: string, role: Role, options: AdminOptions) =>
      withClient(options, async (client) => {
        const changed = await client.call('PATCH', `/v1/clients/${encodeURIComponent(serial)}`, ClientInfoSchema, { role });
        if (options.json) printJson(changed);
        else print(`${changed.name} (${changed.serial}) now acts as ${changed.role}; its certificate carries ${changed.certificateRole}`);
      }),
    );
  command
    .command('revoke <serial>')
    .description('revoke a client certificate (to change a role: revoke, then pair again with `token --role`)')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((serial: string, options: AdminOptions) =>
      withClient(options, async (client) => {
        const revoked = await client.call('DELETE', `/v1/clients/${encodeURIComponent(serial)}`, ClientInfoSchema);
        if (options.json) printJson(revoked);
        else print(`revoked ${revoked.name} (${revoked.serial}, ${revoked.role})`);
      }),
    );
}
