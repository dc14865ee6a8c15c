import type { Logger } from 'pino';
import { isProblemError } from '@tandem/contract';
import type { BlockDevice, ExportCatalog } from '../storage/block-device.ts';
import { optionError, optionReply, writeUInt64 } from './framing.ts';
import { parseMetaContextRequest, selectsBaseAllocation } from './meta-context.ts';
import {
  BASE_ALLOCATION,
  BASE_ALLOCATION_ID,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_FLAG_CAN_MULTI_CONN,
  NBD_FLAG_HAS_FLAGS,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_SEND_DF,
  NBD_FLAG_SEND_FAST_ZERO,
  NBD_FLAG_SEND_FLUSH,
  NBD_FLAG_SEND_FUA,
  NBD_FLAG_SEND_TRIM,
  NBD_FLAG_SEND_WRITE_ZEROES,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_DESCRIPTION,
  NBD_INFO_EXPORT,
  NBD_INFO_NAME,
  NBD_OPT_ABORT,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_GO,
  NBD_OPT_INFO,
  NBD_OPT_LIST,
  NBD_OPT_LIST_META_CONTEXT,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STARTTLS,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_OPTS_MAGIC_HIGH,
  NBD_OPTS_MAGIC_LOW,
  NBD_REP_ACK,
  NBD_REP_ERR_INVALID,
  NBD_REP_ERR_POLICY,
  NBD_REP_ERR_SHUTDOWN,
  NBD_REP_ERR_TLS_REQD,
  NBD_REP_ERR_TOO_BIG,
  NBD_REP_ERR_UNKNOWN,
  NBD_REP_ERR_UNSUP,
  NBD_REP_INFO,
  NBD_REP_META_CONTEXT,
  NBD_REP_SERVER,
  OPTION_HEADER_BYTES,
  optionName,
} from './protocol.ts';

/** What option haggling settled on, handed to the transmission phase. */
export interface NegotiatedExport {
  exportName: string;
  device: BlockDevice;
  /** Export size as advertised; requests are checked against this. */
  sizeBytes: number;
  transmissionFlags: number;
  structuredReplies: boolean;
  /** `base:allocation` was selected for this export: BLOCK_STATUS allowed. */
  blockStatus: boolean;
}

export type HandshakeOutcome =
  | { kind: 'need-more' }
  | { kind: 'transmission'; negotiated: NegotiatedExport; rest: Buffer }
  /** STARTTLS was acknowledged: the TLS handshake follows; `rest` must be empty (the client waits for the ACK). */
  | { kind: 'starttls'; rest: Buffer }
  | { kind: 'close'; reason: string; violation: boolean };

/** What this connection may do: TLS (NBD_OPT_STARTTLS) and which exports its client may open. */
export interface HandshakePolicy {
  /** STARTTLS is offered on this listener. */
  tlsAvailable: boolean;
  /** Until TLS is up every option but STARTTLS and ABORT is refused with NBD_REP_ERR_TLS_REQD. */
  tlsRequired: boolean;
  /** TLS is up: a second STARTTLS is invalid. */
  tlsActive: boolean;
  /** The exports this client may list and open; null for every export. */
  allowed: ((exportName: string) => boolean) | null;
  /** TLS is up but the client is not one we know: every option is refused (NBD_REP_ERR_POLICY) with this. */
  refusal: string | null;
}

/** Plaintext, every export: the Unix socket, and TCP listeners without TLS. */
export const OPEN_POLICY: HandshakePolicy = Object.freeze({ tlsAvailable: false, tlsRequired: false, tlsActive: false, allowed: null, refusal: null });

export interface HandshakeLimits {
  /** Largest option payload accepted; larger ones end the connection. */
  maxOptionBytes: number;
  /** Most options one connection may send before it must choose an export. */
  maxOptions: number;
  /** Most option bytes (headers and data) one connection may send before choosing an export. */
  maxHandshakeBytes: number;
  /** Advertised maximum block size (the transmission request limit). */
  maxRequestBytes: number;
}

type Stage = 'client-flags' | 'option-header' | 'option-data';

const NEED_MORE: HandshakeOutcome = { kind: 'need-more' };

/**
 * Fixed-newstyle option haggling as a synchronous state machine: the
 * connection feeds it bytes, it answers through `send` and reports when the
 * client has chosen an export (or must be dropped).
 */
export class Handshake {
  private buffered: Buffer = Buffer.alloc(0);
  private stage: Stage = 'client-flags';
  private noZeroes = false;
  private structuredReplies = false;
  private metaContextExport: string | null = null;
  private optionsSeen = 0;
  private handshakeBytes = 0;
  private option = 0;
  private optionLength = 0;
  /** Set while the server shuts down: options other than ABORT get ERR_SHUTDOWN. */
  shuttingDown = false;

  constructor(
    private readonly exports: ExportCatalog,
    private readonly send: (bytes: Buffer) => void,
    private readonly logger: Logger,
    private readonly limits: HandshakeLimits,
    private readonly policy: HandshakePolicy = OPEN_POLICY,
    /** After STARTTLS: haggling goes on with options (the client flags came before), NO_ZEROES as negotiated then. */
    resumed?: { noZeroes: boolean },
  ) {
    if (resumed) {
      this.stage = 'option-header';
      this.noZeroes = resumed.noZeroes;
    }
  }

  /** The client asked for no zero padding (kept across STARTTLS). */
  get clientNoZeroes(): boolean {
    return this.noZeroes;
  }

  /** Options received so far (the connection restarts its idle timer on progress). */
  get optionCount(): number {
    return this.optionsSeen;
  }

  feed(chunk: Buffer): HandshakeOutcome {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    for (;;) {
      const outcome = this.step();
      if (outcome !== null) return outcome;
    }
  }

  /** Advances one stage; null means "call again". */
  private step(): HandshakeOutcome | null {
    switch (this.stage) {
      case 'client-flags': {
        if (this.buffered.length < 4) return NEED_MORE;
        const flags = this.buffered.readUInt32BE(0);
        this.consume(4);
        if ((flags & NBD_FLAG_C_FIXED_NEWSTYLE) === 0) {
          return close('client does not speak fixed newstyle negotiation', true);
        }
        if ((flags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) !== 0) {
          return close(`unknown client flags 0x${flags.toString(16)}`, true);
        }
        this.noZeroes = (flags & NBD_FLAG_C_NO_ZEROES) !== 0;
        this.stage = 'option-header';
        return null;
      }
      case 'option-header': {
        if (this.buffered.length < OPTION_HEADER_BYTES) return NEED_MORE;
        const high = this.buffered.readUInt32BE(0);
        const low = this.buffered.readUInt32BE(4);
        this.option = this.buffered.readUInt32BE(8);
        this.optionLength = this.buffered.readUInt32BE(12);
        this.consume(OPTION_HEADER_BYTES);
        if (high !== NBD_OPTS_MAGIC_HIGH || low !== NBD_OPTS_MAGIC_LOW) {
          return close('bad option magic', true);
        }
        if (++this.optionsSeen > this.limits.maxOptions) {
          return close(`more than ${this.limits.maxOptions} options`, true);
        }
        if (this.optionLength > this.limits.maxOptionBytes) {
          if (this.option !== NBD_OPT_EXPORT_NAME) {
            this.send(optionError(this.option, NBD_REP_ERR_TOO_BIG, 'option data too large'));
          }
          return close(`option ${optionName(this.option)} carries ${this.optionLength} bytes`, true);
        }
        this.handshakeBytes += OPTION_HEADER_BYTES + this.optionLength;
        if (this.handshakeBytes > this.limits.maxHandshakeBytes) {
          return close(`more than ${this.limits.maxHandshakeBytes} bytes of options`, true);
        }
        this.stage = 'option-data';
        return null;
      }
      case 'option-data': {
        if (this.buffered.length < this.optionLength) return NEED_MORE;
        const data = this.buffered.subarray(0, this.optionLength);
        this.consume(this.optionLength);
        this.stage = 'option-header';
        return this.handleOption(this.option, data);
      }
    }
  }

  private consume(count: number): void {
    this.buffered = this.buffered.subarray(count);
  }

  /** Handles one complete option; null to keep haggling. */
  private handleOption(option: number, data: Buffer): HandshakeOutcome | null {
    this.logger.debug({ option: optionName(option), length: data.length }, 'nbd option');
    if (this.shuttingDown && option !== NBD_OPT_ABORT) {
      if (option === NBD_OPT_EXPORT_NAME) return close('server shutting down', false);
      this.send(optionError(option, NBD_REP_ERR_SHUTDOWN, 'server is shutting down'));
      return null;
    }
    if (option === NBD_OPT_STARTTLS) return this.startTls(data);
    if (option !== NBD_OPT_ABORT) {
      const { refusal, tlsRequired, tlsActive } = this.policy;
      if (refusal !== null) {
        if (option === NBD_OPT_EXPORT_NAME) return close(`EXPORT_NAME refused: ${refusal}`, false);
        this.send(optionError(option, NBD_REP_ERR_POLICY, refusal));
        return null;
      }
      if (tlsRequired && !tlsActive) {
        if (option === NBD_OPT_EXPORT_NAME) return close('EXPORT_NAME without TLS on a listener that requires it', false);
        this.send(optionError(option, NBD_REP_ERR_TLS_REQD, 'this server requires TLS: negotiate NBD_OPT_STARTTLS first'));
        return null;
      }
    }
    switch (option) {
      case NBD_OPT_EXPORT_NAME:
        return this.exportName(data);
      case NBD_OPT_ABORT:
        this.send(optionReply(option, NBD_REP_ACK));
        return close('client aborted negotiation', false);
      case NBD_OPT_LIST:
        this.list(data);
        return null;
      case NBD_OPT_INFO:
      case NBD_OPT_GO:
        return this.infoOrGo(option, data);
      case NBD_OPT_STRUCTURED_REPLY:
        if (data.length !== 0) {
          this.send(optionError(option, NBD_REP_ERR_INVALID, 'STRUCTURED_REPLY takes no data'));
        } else {
          this.structuredReplies = true;
          this.send(optionReply(option, NBD_REP_ACK));
        }
        return null;
      case NBD_OPT_LIST_META_CONTEXT:
      case NBD_OPT_SET_META_CONTEXT:
        this.metaContext(option, data);
        return null;
      default:
        this.logger.debug({ option: optionName(option) }, 'nbd option not supported');
        this.send(optionError(option, NBD_REP_ERR_UNSUP, `option ${option} is not supported`));
        return null;
    }
  }

  private startTls(data: Buffer): HandshakeOutcome | null {
    if (!this.policy.tlsAvailable) {
      this.send(optionError(NBD_OPT_STARTTLS, NBD_REP_ERR_UNSUP, 'TLS is not offered on this listener (see tandem-agent run --tls)'));
      return null;
    }
    if (this.policy.tlsActive) {
      this.send(optionError(NBD_OPT_STARTTLS, NBD_REP_ERR_INVALID, 'TLS is already active'));
      return null;
    }
    if (data.length !== 0) {
      this.send(optionError(NBD_OPT_STARTTLS, NBD_REP_ERR_INVALID, 'STARTTLS takes no data'));
      return null;
    }
    this.send(optionReply(NBD_OPT_STARTTLS, NBD_REP_ACK));
    const rest = this.buffered;
    this.buffered = Buffer.alloc(0);
    return { kind: 'starttls', rest };
  }

  /** Whether this connection's client may see and open `name`. */
  private permits(name: string): boolean {
    return this.policy.allowed === null || this.policy.allowed(name);
  }

  private refuseExport(option: number, name: string): void {
    this.send(optionError(option, NBD_REP_ERR_POLICY, `this client may not open export ${JSON.stringify(name)}`));
  }

  private list(data: Buffer): void {
    if (data.length !== 0) {
      this.send(optionError(NBD_OPT_LIST, NBD_REP_ERR_INVALID, 'LIST takes no data'));
      return;
    }
    for (const entry of this.exports.listExports()) {
      if (!this.permits(entry.name)) continue;
      const name = Buffer.from(entry.name, 'utf8');
      const description = Buffer.from(entry.description ?? '', 'utf8');
      const payload = Buffer.allocUnsafe(4 + name.length + description.length);
      payload.writeUInt32BE(name.length, 0);
      name.copy(payload, 4);
      description.copy(payload, 4 + name.length);
      this.send(optionReply(NBD_OPT_LIST, NBD_REP_SERVER, payload));
    }
    this.send(optionReply(NBD_OPT_LIST, NBD_REP_ACK));
  }

  private exportName(data: Buffer): HandshakeOutcome {
    const name = data.toString('utf8');
    if (!this.permits(name)) return close(`EXPORT_NAME of ${JSON.stringify(name)}, not on this client's allow-list`, false);
    const device = this.open(name);
    if (!device) return close(`EXPORT_NAME of unknown export ${JSON.stringify(name)}`, false);
    const negotiated = this.negotiated(name, device);
    const reply = Buffer.alloc(this.noZeroes ? 10 : 134);
    writeUInt64(reply, negotiated.sizeBytes, 0);
    reply.writeUInt16BE(negotiated.transmissionFlags, 8);
    this.send(reply);
    return this.enterTransmission(negotiated);
  }

  private infoOrGo(option: number, data: Buffer): HandshakeOutcome | null {
    if (data.length < 6) {
      this.send(optionError(option, NBD_REP_ERR_INVALID, 'option data too short'));
      return null;
    }
    const nameLength = data.readUInt32BE(0);
    if (nameLength > data.length - 6) {
      this.send(optionError(option, NBD_REP_ERR_INVALID, 'export name runs past the option data'));
      return null;
    }
    const name = data.toString('utf8', 4, 4 + nameLength);
    const count = data.readUInt16BE(4 + nameLength);
    if (data.length !== 4 + nameLength + 2 + 2 * count) {
      this.send(optionError(option, NBD_REP_ERR_INVALID, 'information request list has the wrong length'));
      return null;
    }
    const requested = new Set<number>();
    for (let index = 0; index < count; index++) requested.add(data.readUInt16BE(4 + nameLength + 2 + 2 * index));

    if (!this.permits(name)) {
      this.refuseExport(option, name);
      return null;
    }
    const device = this.open(name);
    if (!device) {
      this.send(optionError(option, NBD_REP_ERR_UNKNOWN, `no export named ${JSON.stringify(name)}`));
      return null;
    }
    const negotiated = this.negotiated(name, device);

    const exportInfo = Buffer.allocUnsafe(12);
    exportInfo.writeUInt16BE(NBD_INFO_EXPORT, 0);
    writeUInt64(exportInfo, negotiated.sizeBytes, 2);
    exportInfo.writeUInt16BE(negotiated.transmissionFlags, 10);
    this.send(optionReply(option, NBD_REP_INFO, exportInfo));

    // Block size constraints are near the defaults (minimum 1), so they are
    // sent whether or not the client asked; clients ignore what they don't use.
    const blockSize = Buffer.allocUnsafe(14);
    blockSize.writeUInt16BE(NBD_INFO_BLOCK_SIZE, 0);
    blockSize.writeUInt32BE(1, 2);
    blockSize.writeUInt32BE(preferredBlockSize(device.trackSize, this.limits.maxRequestBytes), 6);
    blockSize.writeUInt32BE(this.limits.maxRequestBytes, 10);
    this.send(optionReply(option, NBD_REP_INFO, blockSize));

    if (requested.has(NBD_INFO_NAME)) {
      this.send(optionReply(option, NBD_REP_INFO, infoString(NBD_INFO_NAME, device.name)));
    }
    if (requested.has(NBD_INFO_DESCRIPTION)) {
      const description = this.describe(device.name);
      if (description) this.send(optionReply(option, NBD_REP_INFO, infoString(NBD_INFO_DESCRIPTION, description)));
    }
    this.send(optionReply(option, NBD_REP_ACK));
    return option === NBD_OPT_GO ? this.enterTransmission(negotiated) : null;
  }

  private metaContext(option: number, data: Buffer): void {
    const setting = option === NBD_OPT_SET_META_CONTEXT;
    // SET replaces the selection even when it fails.
    if (setting) this.metaContextExport = null;
    if (!this.structuredReplies) {
      this.send(optionError(option, NBD_REP_ERR_INVALID, 'negotiate STRUCTURED_REPLY first'));
      return;
    }
    const parsed = parseMetaContextRequest(data);
    if (!parsed.ok) {
      this.send(optionError(option, parsed.tooBig ? NBD_REP_ERR_TOO_BIG : NBD_REP_ERR_INVALID, parsed.message));
      return;
    }
    const { exportName, queries } = parsed.request;
    if (!this.permits(exportName)) {
      this.refuseExport(option, exportName);
      return;
    }
    if (!this.open(exportName)) {
      this.send(optionError(option, NBD_REP_ERR_UNKNOWN, `no export named ${JSON.stringify(exportName)}`));
      return;
    }
    if (selectsBaseAllocation(queries, !setting)) {
      const name = Buffer.from(BASE_ALLOCATION, 'utf8');
      const payload = Buffer.allocUnsafe(4 + name.length);
      payload.writeUInt32BE(setting ? BASE_ALLOCATION_ID : 0, 0);
      name.copy(payload, 4);
      this.send(optionReply(option, NBD_REP_META_CONTEXT, payload));
      if (setting) this.metaContextExport = exportName;
    }
    this.send(optionReply(option, NBD_REP_ACK));
  }

  private open(name: string): BlockDevice | null {
    try {
      return this.exports.openExport(name);
    } catch (error) {
      if (!isProblemError(error) || error.problem !== 'not-found') {
        this.logger.error({ err: error, exportName: name }, 'nbd export open failed');
      }
      return null;
    }
  }

  private describe(name: string): string | undefined {
    return this.exports.listExports().find((entry) => entry.name === name)?.description;
  }

  private negotiated(exportName: string, device: BlockDevice): NegotiatedExport {
    return {
      exportName,
      device,
      sizeBytes: device.sizeBytes,
      transmissionFlags: transmissionFlags(device.readOnly, this.structuredReplies),
      structuredReplies: this.structuredReplies,
      blockStatus: this.structuredReplies && this.metaContextExport === exportName,
    };
  }

  private enterTransmission(negotiated: NegotiatedExport): HandshakeOutcome {
    const rest = this.buffered;
    this.buffered = Buffer.alloc(0);
    return { kind: 'transmission', negotiated, rest };
  }
}

/** Transmission flags for an export. Flush is global in the engine, so multi-conn is safe. */
export function transmissionFlags(readOnly: boolean, structuredReplies: boolean): number {
  let flags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA | NBD_FLAG_CAN_MULTI_CONN;
  if (readOnly) flags |= NBD_FLAG_READ_ONLY;
  else flags |= NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_FAST_ZERO;
  if (structuredReplies) flags |= NBD_FLAG_SEND_DF;
  return flags;
}

/** The track size, kept within what the spec allows for a preferred size. */
function preferredBlockSize(trackSize: number, maxRequestBytes: number): number {
  let size = 512;
  while (size < trackSize && size * 2 <= maxRequestBytes) size *= 2;
  return size;
}

function infoString(type: number, text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const payload = Buffer.allocUnsafe(2 + bytes.length);
  payload.writeUInt16BE(type, 0);
  bytes.copy(payload, 2);
  return payload;
}

function close(reason: string, violation: boolean): HandshakeOutcome {
  return { kind: 'close', reason, violation };
}
