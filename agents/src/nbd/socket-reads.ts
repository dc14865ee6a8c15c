import type { Socket } from 'node:net';

/**
 * Socket reads into buffers we choose, as `net.Socket`'s `onread` option
 * does for sockets we create (Node's documented "reusable buffer" mode), but
 * for sockets a server accepted, which take no such option: the same three
 * per-socket slots are filled, found by their symbol descriptions.
 *
 * Why: by default every read lands in a freshly allocated 64 KiB buffer that
 * the kernel faults in and V8 later collects, and a WRITE payload is then
 * copied once more out of it. Choosing the buffer per read lets a large
 * payload land straight in its (pooled) payload buffer: one kernel copy and
 * no garbage (perf under sequential 1 MiB writes: page faults under
 * `_copy_to_iter` ~9 %, memmove out of the read buffers ~10 %, malloc and
 * GC besides; issue 15).
 *
 * `next()` is asked for the buffer of each read before it starts; `onRead`
 * gets the bytes read into it and must not keep a reference to a buffer it
 * will hand out again. Returns false when this Node has no such slots (the
 * caller then reads with 'data' events).
 */
export function readIntoChosenBuffers(
  socket: Socket,
  next: () => Buffer,
  onRead: (bytes: number, buffer: Buffer) => void,
): boolean {
  // Nothing may have been read yet: the server was created with pauseOnConnect.
  if (socket.readableLength > 0 || socket.bytesRead > 0) return false;
  return chooseBuffers(socket, next, onRead);
}

/**
 * The same for a socket that has been read with 'data' events until now
 * (the TLS socket after STARTTLS: the handshake and option haggling read
 * it that way). Call it from the 'data' listener `dataListener` or with
 * the socket paused: the listener is removed, and whatever the stream
 * holds buffered is returned (empty when nothing) for the caller to parse
 * before the first read into a chosen buffer arrives. Null when the
 * socket cannot (it then stays as it was).
 *
 * Why for TLS: each decrypted record (at most 16 KiB) otherwise arrives as
 * a freshly allocated buffer through the Readable stream's push and a
 * 'data' event, and a WRITE payload is copied out of it once more; with a
 * chosen buffer Node's TLS layer copies the record's plaintext straight
 * into the payload (perf of TLS seq 1M writes, issue 15: page faults on
 * fresh buffers ~7 %, Readable.push and emit ~13 %, memmove ~11 %).
 */
export function switchToChosenBuffers(
  socket: Socket,
  dataListener: (chunk: Buffer) => void,
  next: () => Buffer,
  onRead: (bytes: number, buffer: Buffer) => void,
): Buffer | null {
  if (!canChooseBuffers(socket)) return null;
  socket.off('data', dataListener);
  const buffered: Buffer[] = [];
  for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) buffered.push(chunk);
  if (!chooseBuffers(socket, next, onRead)) {
    // Not expected after canChooseBuffers; keep reading with 'data' events.
    socket.on('data', dataListener);
    return buffered.length === 0 ? null : Buffer.concat(buffered);
  }
  return buffered.length === 1 ? buffered[0] : Buffer.concat(buffered);
}

interface BufferSlots {
  kBuffer: symbol;
  kBufferCb: symbol;
  kBufferGen: symbol;
  handle: { useUserBuffer: (buffer: Buffer) => void };
}

function slotsOf(socket: Socket): BufferSlots | null {
  const symbols = Object.getOwnPropertySymbols(socket);
  const slot = (description: string): symbol | undefined => symbols.find((s) => s.description === description);
  const kBuffer = slot('kBuffer');
  const kBufferCb = slot('kBufferCb');
  const kBufferGen = slot('kBufferGen');
  const handle = (socket as unknown as { _handle?: { useUserBuffer?: (buffer: Buffer) => void } })._handle;
  if (!kBuffer || !kBufferCb || !kBufferGen || typeof handle?.useUserBuffer !== 'function') return null;
  return { kBuffer, kBufferCb, kBufferGen, handle: handle as BufferSlots['handle'] };
}

function canChooseBuffers(socket: Socket): boolean {
  return slotsOf(socket) !== null;
}

function chooseBuffers(socket: Socket, next: () => Buffer, onRead: (bytes: number, buffer: Buffer) => void): boolean {
  const found = slotsOf(socket);
  if (found === null) return false;
  const { kBuffer, kBufferCb, kBufferGen, handle } = found;
  const first = next();
  if (!Buffer.isBuffer(first)) return false;
  const slots = socket as unknown as Record<symbol, unknown>;
  slots[kBuffer] = first;
  slots[kBufferCb] = (bytes: number, buffer: Buffer): boolean => {
    onRead(bytes, buffer);
    // Pausing is explicit (socket.pause()), never through this return value.
    return true;
  };
  slots[kBufferGen] = next;
  handle.useUserBuffer(first);
  return true;
}
