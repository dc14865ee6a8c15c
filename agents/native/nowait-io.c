/*
 * preadv2(RWF_NOWAIT) for the agent's read path (issue 15).
 *
 * A read served from the page cache costs microseconds; one that misses it
 * waits for the disk. Node offers either a synchronous read (which would
 * stall the event loop, and with it every other client and the replication
 * heartbeats, on a miss) or a round trip through libuv's thread pool (a
 * futex wake-up, an eventfd write and an epoll turn per read: about half
 * the agent's CPU per 4 KiB read in a VM). RWF_NOWAIT gives both: the
 * kernel copies what is cached and answers EAGAIN instead of waiting for
 * the disk, and the caller then sends the rest through the thread pool.
 *
 * preadNowait(fd, buffer, offset, length, position) -> bytes read (may be
 * short, 0 at end of file) or -errno (-EAGAIN: not cached). Synchronous,
 * never blocks on I/O.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <node_api.h>
#include <stdint.h>
#include <sys/uio.h>

#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif

static napi_value fail(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

static napi_value pread_nowait(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 5) return fail(env, "preadNowait(fd, buffer, offset, length, position)");
  int32_t fd;
  void *data;
  size_t size;
  uint32_t offset, length;
  int64_t position;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok) return fail(env, "fd must be a number");
  if (napi_get_buffer_info(env, argv[1], &data, &size) != napi_ok) return fail(env, "buffer must be a Buffer");
  if (napi_get_value_uint32(env, argv[2], &offset) != napi_ok || napi_get_value_uint32(env, argv[3], &length) != napi_ok) return fail(env, "offset and length must be numbers");
  if (napi_get_value_int64(env, argv[4], &position) != napi_ok || position < 0) return fail(env, "position must be a non-negative number");
  if ((size_t)offset > size || (size_t)length > size - offset) return fail(env, "offset + length is past the end of the buffer");
  struct iovec iov = { (char *)data + offset, length };
  ssize_t result = preadv2(fd, &iov, 1, (off_t)position, RWF_NOWAIT);
  napi_value out;
  napi_create_int64(env, result < 0 ? -(int64_t)errno : (int64_t)result, &out);
  return out;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "preadNowait", NAPI_AUTO_LENGTH, pread_nowait, NULL, &fn);
  napi_set_named_property(env, exports, "preadNowait", fn);
  return exports;
}
