import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, runCli, startAgentProcess, type AgentProcess } from './helpers/agent-process.ts';
import { OPT, RawNbdClient } from './helpers/nbd-raw-client.ts';

/**
 * NBD over TLS with real clients (qemu-io with tls-creds-x509 / tls-creds-psk
 * and --image-opts, libnbd's nbds:// URIs through nbdinfo): an agent run with
 * --tls, clients from `tandem-agent nbd-client add`, their export allow-lists.
 */

const REP_ERR_INVALID = 0x80000003;
const REP_ERR_TLS_REQD = 0x80000005;

interface Result {
  code: number;
  out: string;
}

function run(command: string, args: string[], timeoutMs = 60_000): Promise<Result> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

let agent: AgentProcess;
let credentials: string;

async function cli(args: string[]): Promise<string> {
  const result = await runCli([...args, '--data', agent.dataDir]);
  expect(result.code, result.stderr).toBe(0);
  return result.stdout;
}

const x509 = (name: string) => `tls-creds-x509,id=tls0,endpoint=client,dir=${path.join(credentials, name)}`;
const psk = (name: string) => `tls-creds-psk,id=tls0,endpoint=client,username=${name},dir=${path.join(credentials, name)}`;

/** qemu-io over TLS on one export; `commands` are qemu-io commands. */
function qemuIo(creds: string, exportName: string, ...commands: string[]): Promise<Result> {
  const args = ['--object', creds, '--image-opts', `driver=nbd,host=${agent.nbdHost},port=${agent.nbdPort},export=${exportName},tls-creds=tls0`];
  for (const command of commands) args.push('-c', command);
  return run('qemu-io', args);
}

function expectOk(result: Result): void {
  expect(result.code, result.out).toBe(0);
  expect(result.out).not.toMatch(/Pattern verification failed|can't open|failed/i);
}

beforeAll(async () => {
  agent = await startAgentProcess({ site: 'tls', nbdSocket: true, extraArgs: ['--tls'] });
  credentials = path.join(await makeTempDir('tandem-nbd-creds-'), 'creds');
  await cli(['volume', 'create', 'vol1', '64M']);
  await cli(['volume', 'create', 'vol2', '64M']);
  await cli(['nbd-client', 'add', 'alice', '--exports', 'vol1', '--out', path.join(credentials, 'alice')]);
  await cli(['nbd-client', 'add', 'bob', '--psk', '--exports', '*', '--out', path.join(credentials, 'bob')]);
}, 120_000);

afterAll(async () => {
  await agent?.stop().catch(() => {});
});

describe('NBD over TLS', () => {
  it('refuses plaintext over TCP with a clear message, and serves the Unix socket in plaintext', async () => {
    const plain = await run('qemu-io', ['-f', 'raw', '-c', 'read 0 4k', `${agent.nbdUriBase}/vol1`]);
    expect(plain.code).not.toBe(0);
    expect(plain.out).toMatch(/requires TLS/);
    const unix = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x21 0 4k', '-c', 'read -P 0x21 0 4k', `nbd+unix:///vol2?socket=${agent.nbdSocket}`]);
    expectOk(unix);
  });

  it('serves an x509 client from the agent\'s CA its allowed export, and refuses the others', async () => {
    expectOk(await qemuIo(x509('alice'), 'vol1', 'write -P 0x5a 0 1M', 'write -P 0x5b 3000 70000', 'flush'));
    expectOk(await qemuIo(x509('alice'), 'vol1', 'read -P 0x5a 0 3000', 'read -P 0x5b 3000 70000', 'read -P 0x5a 73000 975576'));
    const refused = await qemuIo(x509('alice'), 'vol2', 'read 0 4k');
    expect(refused.code).not.toBe(0);
    expect(refused.out).toMatch(/may not open export "vol2"/);
    // libnbd: nbds:// with the same certificate directory; the list shows the allowed export only.
    const info = await run('nbdinfo', [`nbds://${agent.nbdHost}:${agent.nbdPort}/vol1?tls-certificates=${path.join(credentials, 'alice')}`]);
    expect(info.code, info.out).toBe(0);
    expect(info.out).toMatch(/export-size: 67108864/);
    const list = await run('nbdinfo', ['--list', `nbds://${agent.nbdHost}:${agent.nbdPort}/?tls-certificates=${path.join(credentials, 'alice')}`]);
    expect(list.code, list.out).toBe(0);
    expect(list.out).toMatch(/export="vol1"/);
    expect(list.out).not.toMatch(/export="vol2"/);
  });

  it('carries pipelined large writes over TLS byte for byte (payloads read straight into place after option haggling)', async () => {
    // nbdcopy keeps 16 requests in flight: WRITE payloads larger than a TLS record (16 KiB) arrive in many
    // records, headers land mid-record; 1 MiB and 32 KiB requests. Read back over TLS and compared.
    const dir = await makeTempDir('tandem-nbd-tls-copy-');
    const source = path.join(dir, 'source.bin');
    const back = path.join(dir, 'back.bin');
    const data = randomBytes(48 * 1024 * 1024);
    await writeFile(source, data);
    const uri = `nbds://${agent.nbdHost}:${agent.nbdPort}/vol1?tls-certificates=${path.join(credentials, 'alice')}`;
    for (const size of [1024 * 1024, 32768]) {
      const copy = await run('nbdcopy', ['--connections=1', '--requests=16', `--request-size=${size}`, '--flush', source, uri], 120_000);
      expect(copy.code, copy.out).toBe(0);
      const read = await run('nbdcopy', ['--connections=1', '--requests=16', `--request-size=${size}`, uri, back], 120_000);
      expect(read.code, read.out).toBe(0);
      const got = (await readFile(back)).subarray(0, data.length);
      expect(Buffer.compare(got, data), `request size ${size}`).toBe(0);
      data[size % data.length] ^= 0xff; // the second pass writes different bytes: stale data cannot pass
      await writeFile(source, data);
    }
  }, 180_000);

  it('serves a PSK client (qemu and libnbd), and refuses it from its next connection on once removed', async () => {
    expectOk(await qemuIo(psk('bob'), 'vol2', 'write -P 0x6c 1M 2M', 'read -P 0x6c 1M 2M'));
    const info = await run('nbdinfo', [`nbds://bob@${agent.nbdHost}:${agent.nbdPort}/vol1?tls-psk-file=${path.join(credentials, 'bob', 'keys.psk')}`]);
    expect(info.code, info.out).toBe(0);
    await cli(['nbd-client', 'remove', 'bob']);
    const after = await qemuIo(psk('bob'), 'vol2', 'read 0 4k');
    expect(after.code).not.toBe(0);
    expect(after.out).toMatch(/TLS|handshake|credentials/i);
  });

  it('refuses a certificate not issued by the agent\'s CA', async () => {
    const dir = path.join(credentials, 'stranger');
    await mkdir(dir, { recursive: true });
    await copyFile(path.join(credentials, 'alice', 'ca-cert.pem'), path.join(dir, 'ca-cert.pem'));
    const made = await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=stranger', '-days', '2',
      '-keyout', path.join(dir, 'client-key.pem'), '-out', path.join(dir, 'client-cert.pem'),
    ]);
    expect(made.code, made.out).toBe(0);
    // (qemu checks its own certificate against the CA first; libnbd lets the server decide.)
    const refused = await run('nbdinfo', [`nbds://${agent.nbdHost}:${agent.nbdPort}/vol1?tls-certificates=${dir}`]);
    expect(refused.code).not.toBe(0);
    expect(refused.out).toMatch(/server replied with error to opt_go/);
  });

  it('answers malformed and out-of-order options with NBD errors and keeps the connection', async () => {
    const client = await RawNbdClient.connect({ host: agent.nbdHost, port: agent.nbdPort });
    try {
      await client.readGreeting();
      client.sendClientFlags(1 | 2);
      client.sendOption(OPT.STARTTLS, Buffer.from([1, 2, 3, 4]));
      expect((await client.readOptionReply()).type).toBe(REP_ERR_INVALID);
      client.sendOption(OPT.LIST);
      const list = await client.readOptionReply();
      expect(list.type).toBe(REP_ERR_TLS_REQD);
      expect(list.data.toString()).toMatch(/requires TLS/);
      client.sendOption(OPT.ABORT);
      expect((await client.readOptionReply()).type).toBe(1);
    } finally {
      client.destroy();
    }
  });

  it('refuses to start NBD on a non-loopback address without --tls', async () => {
    const dir = await makeTempDir('tandem-nbd-notls-');
    const init = await runCli(['init', '--data', dir, '--site', 'open']);
    expect(init.code, init.stderr).toBe(0);
    const result = await runCli(['run', '--data', dir, '--api', '127.0.0.1:0', '--nbd', '0.0.0.0:0', '--link', '127.0.0.1:0'], { timeoutMs: 30_000 });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/add --tls/);
  });
});
