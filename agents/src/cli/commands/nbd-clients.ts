import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { dataDirPaths } from '../../data-dir.ts';
import { readIdentity } from '../data-dir-files.ts';
import { dataOption, jsonOption } from '../arguments.ts';
import { CliError, formatTable, print, printJson, usageError } from '../output.ts';

/**
 * `tandem-agent nbd-client add|list|remove`: the clients an agent run with
 * `--tls` serves NBD to, each with its export allow-list. `add` writes the
 * client's credentials into a directory in the layout qemu
 * (`tls-creds-x509,dir=…` / `tls-creds-psk,dir=…`) and libnbd
 * (`nbds://…?tls-certificates=…` / `?tls-psk-file=…`) read.
 */

interface AddOptions {
  data: string;
  exports: string;
  psk?: boolean;
  out: string;
  json?: boolean;
}

function parseExports(text: string): string[] {
  const list = text.split(',').map((e) => e.trim()).filter(Boolean);
  if (list.length === 0) throw usageError('--exports needs at least one export name, or *');
  return list;
}

async function registry(dataDir: string) {
  const paths = dataDirPaths(dataDir);
  await readIdentity(paths.root);
  const { NbdClientRegistry, nbdClientsFile } = await import('../../nbd/tls-clients.ts');
  return { paths, clients: new NbdClientRegistry(nbdClientsFile(paths.tls)) };
}

async function add(name: string, options: AddOptions): Promise<void> {
  const { paths, clients } = await registry(options.data);
  const { checkClientName } = await import('../../nbd/tls-clients.ts');
  try {
    checkClientName(name);
  } catch (error) {
    throw usageError((error as Error).message);
  }
  if (clients.list().some((c) => c.name === name)) throw new CliError(`an NBD client named ${name} exists already`, 1, 'already-exists');
  const exports = parseExports(options.exports);
  const out = path.resolve(options.out);
  await mkdir(out, { recursive: true, mode: 0o700 });
  const createdAt = new Date().toISOString();
  const files: string[] = [];
  const write = async (file: string, text: string, mode: number): Promise<void> => {
    await writeFile(path.join(out, file), text, { mode, flag: 'wx' }).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'EEXIST') throw new CliError(`${path.join(out, file)} exists already; choose another --out`, 1, 'already-exists');
      throw error;
    });
    files.push(path.join(out, file));
  };
  if (options.psk) {
    const key = randomBytes(32).toString('hex');
    await write('keys.psk', `${name}:${key}\n`, 0o600);
    clients.add({ name, kind: 'psk', key, exports, createdAt });
  } else {
    const [{ loadAuthority, issueWithNewKey }, { tlsPaths }, { certificateFingerprint }] = await Promise.all([
      import('../../tls/authority.ts'),
      import('../../tls/files.ts'),
      import('../../tls/fingerprint.ts'),
    ]);
    const tlsFiles = tlsPaths(paths.root);
    const [caPem, caKeyPem] = await Promise.all([readFile(tlsFiles.caCertificate, 'utf8'), readFile(tlsFiles.caKey, 'utf8')]);
    const authority = await loadAuthority(caPem, caKeyPem);
    const issued = await issueWithNewKey(authority, { commonName: `nbd-client ${name}`, usage: 'client' });
    await write('ca-cert.pem', caPem, 0o644);
    await write('client-cert.pem', issued.certificatePem, 0o644);
    await write('client-key.pem', issued.keyPem, 0o600);
    clients.add({ name, kind: 'x509', fingerprint: certificateFingerprint(issued.certificatePem), exports, createdAt });
  }
  const result = { name, kind: options.psk ? 'psk' : 'x509', exports, directory: out, files };
  if (options.json) return printJson(result);
  print(`NBD client ${name} (${result.kind}) may open ${exports.join(', ')}; credentials in ${out}`);
  if (options.psk) {
    print(`  qemu: --object tls-creds-psk,id=tls0,endpoint=client,username=${name},dir=${out}`);
    print(`  libnbd: nbds://HOST:PORT/EXPORT?tls-psk-file=${path.join(out, 'keys.psk')}&tls-username=${name}`);
  } else {
    print(`  qemu: --object tls-creds-x509,id=tls0,endpoint=client,dir=${out}`);
    print(`  libnbd: nbds://HOST:PORT/EXPORT?tls-certificates=${out}`);
  }
}

async function list(options: { data: string; json?: boolean }): Promise<void> {
  const { clients } = await registry(options.data);
  const all = clients.list().map(({ name, kind, exports, fingerprint, createdAt }) => ({ name, kind, exports, fingerprint: fingerprint ?? null, createdAt }));
  if (options.json) return printJson(all);
  if (all.length === 0) return print('no NBD clients (tandem-agent nbd-client add NAME --exports LIST --out DIR)');
  print(formatTable(['name', 'kind', 'exports', 'created'], all.map((c) => [c.name, c.kind, c.exports.join(','), c.createdAt])));
}

async function remove(name: string, options: { data: string; json?: boolean }): Promise<void> {
  const { clients } = await registry(options.data);
  if (!clients.remove(name)) throw new CliError(`no NBD client named ${name}`, 1, 'not-found');
  if (options.json) return printJson({ removed: name });
  print(`removed NBD client ${name} (from its next connection on)`);
}

export function registerNbdClientCommands(program: Command): void {
  const command = program.command('nbd-client').description('clients allowed to use NBD over TLS (run --tls), with export allow-lists');
  command
    .command('add <name>')
    .description('issue a client certificate from this agent\'s CA (or a PSK key with --psk) and allow it the given exports')
    .addOption(dataOption())
    .requiredOption('--exports <list>', 'comma list of export (volume) names the client may open, or * for all')
    .option('--psk', 'a pre-shared key instead of a certificate')
    .requiredOption('--out <dir>', 'directory for the client\'s credential files (qemu/libnbd layout)')
    .addOption(jsonOption())
    .action(add);
  command.command('list').description('list the NBD clients').addOption(dataOption()).addOption(jsonOption()).action(list);
  command
    .command('remove <name>')
    .description('forget an NBD client; its next connection is refused')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action(remove);
}
