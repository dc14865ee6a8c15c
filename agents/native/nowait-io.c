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
 *
 * pwriteChunked(fd, buffer, offset, length, position, chunk) -> Promise of
 * the bytes written or -errno: one write through libuv's thread pool, done
 * there as pwrite calls that never cross a multiple of `chunk` in the file.
 * Why: the kernel sizes the page-cache folios a buffered write creates by
 * the write's length, and ext4 (with large folios, Linux >= 6.16) walks
 * every 4 KiB block of a folio on each later write into it. After one
 * 1 MiB pwrite, a 4 KiB overwrite of that range cost ~30 us of kernel time
 * instead of ~7 us (128 KiB folios) on the bench VM, so 4K random
 * overwrites of data written sequentially paid it on every request. Split
 * in JS, the same write costs a thread-pool round trip per chunk; here it
 * is still one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

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

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref buffer; /* keeps the data alive while the thread pool writes it */
  int fd;
  char *data;
  size_t length;
  int64_t position;
  size_t chunk;
  size_t done;
  int error;
} chunked_write;

static void chunked_execute(napi_env env, void *arg) {
  chunked_write *job = arg;
  (void)env;
  while (job->done < job->length) {
    int64_t at = job->position + (int64_t)job->done;
    size_t step = job->chunk - (size_t)(at % (int64_t)job->chunk);
    if (step > job->length - job->done) step = job->length - job->done;
    ssize_t written = pwrite(job->fd, job->data + job->done, step, (off_t)at);
    if (written < 0) {
      if (errno == EINTR) continue;
      job->error = errno;
      return;
    }
    if (written == 0) {
      job->error = EIO;
      return;
    }
    job->done += (size_t)written;
  }
}

static void chunked_complete(napi_env env, napi_status status, void *arg) {
  chunked_write *job = arg;
  napi_value result;
  int64_t value = status != napi_ok ? -(int64_t)EIO : job->error != 0 ? -(int64_t)job->error : (int64_t)job->done;
  napi_create_int64(env, value, &result);
  napi_resolve_deferred(env, job->deferred, result);
  napi_delete_reference(env, job->buffer);
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value pwrite_chunked(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 6) return fail(env, "pwriteChunked(fd, buffer, offset, length, position, chunk)");
  int32_t fd;
  void *data;
  size_t size;
  uint32_t offset, length, chunk;
  int64_t position;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok) return fail(env, "fd must be a number");
  if (napi_get_buffer_info(env, argv[1], &data, &size) != napi_ok) return fail(env, "buffer must be a Buffer");
  if (napi_get_value_uint32(env, argv[2], &offset) != napi_ok || napi_get_value_uint32(env, argv[3], &length) != napi_ok) return fail(env, "offset and length must be numbers");
  if (napi_get_value_int64(env, argv[4], &position) != napi_ok || position < 0) return fail(env, "position must be a non-negative number");
  if (napi_get_value_uint32(env, argv[5], &chunk) != napi_ok || chunk == 0) return fail(env, "chunk must be a positive number");
  if ((size_t)offset > size || (size_t)length > size - offset) return fail(env, "offset + length is past the end of the buffer");
  chunked_write *job = calloc(1, sizeof *job);
  if (job == NULL) return fail(env, "out of memory");
  job->fd = fd;
  job->data = (char *)data + offset;
  job->length = length;
  job->position = position;
  job->chunk = chunk;
  napi_value promise, name;
  napi_create_string_utf8(env, "tandem:pwriteChunked", NAPI_AUTO_LENGTH, &name);
  if (napi_create_reference(env, argv[1], 1, &job->buffer) != napi_ok) {
    free(job);
    return fail(env, "pwriteChunked: could not hold the buffer");
  }
  if (napi_create_async_work(env, NULL, name, chunked_execute, chunked_complete, job, &job->work) != napi_ok) {
    napi_delete_reference(env, job->buffer);
    free(job);
    return fail(env, "pwriteChunked: could not create the work");
  }
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok || napi_queue_async_work(env, job->work) != napi_ok) {
    /* A promise made here never settles: the caller gets the exception instead. */
    napi_delete_async_work(env, job->work);
    napi_delete_reference(env, job->buffer);
    free(job);
    return fail(env, "pwriteChunked: could not queue the write");
  }
  return promise;
}

void register_sd_notify(napi_env env, napi_value exports); /* sd-notify.c */

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "preadNowait", NAPI_AUTO_LENGTH, pread_nowait, NULL, &fn);
  napi_set_named_property(env, exports, "preadNowait", fn);
  napi_create_function(env, "pwriteChunked", NAPI_AUTO_LENGTH, pwrite_chunked, NULL, &fn);
  napi_set_named_property(env, exports, "pwriteChunked", fn);
  register_sd_notify(env, exports);
  return exports;
}
