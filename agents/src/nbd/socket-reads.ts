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
  const symbols = Object.getOwnPropertySymbols(socket);
  const slot = (description: string): symbol | undefined => symbols.find((s) => s.description === description);
  const kBuffer = slot('kBuffer');
  const kBufferCb = slot('kBufferCb');
  const kBufferGen = slot('kBufferGen');
  const handle = (socket as unknown as { _handle?: { useUserBuffer?: (buffer: Buffer) => void } })._handle;
  if (!kBuffer || !kBufferCb || !kBufferGen || typeof handle?.useUserBuffer !== 'function') return false;
  // Nothing may have been read yet: the server was created with pauseOnConnect.
  if (socket.readableLength > 0 || socket.bytesRead > 0) return false;
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
