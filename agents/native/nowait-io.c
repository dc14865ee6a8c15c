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
 *
 * sendAll(fd, buffer, offset, length, waitMs) -> Promise of the bytes sent
 * (all of them, or fewer when the socket stayed full for waitMs) or -errno:
 * one NBD READ reply written to a socket by a thread-pool thread instead of
 * the event loop. Writing a 1 MiB reply into a loopback TCP socket costs the
 * calling thread ~0.3-1 ms of kernel time (the copy into socket buffers and
 * the loopback delivery); beside a cold sequential reader these writes were
 * half of the event loop's CPU, and a loop that busy is preempted like any
 * CPU hog, so a second client's 4 KiB reads waited for it (issue 15's
 * cold-read leg). The job sends on its own dup of fd, so the caller may close
 * the socket meanwhile; the caller must write nothing else to the socket
 * until the promise settles.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
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

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref buffer; /* keeps the data alive while the thread pool sends it */
  int fd;          /* our own dup of the socket, closed by the job */
  const char *data;
  size_t length;
  int wait_ms;
  size_t done;
  int error;
} socket_send;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void send_execute(napi_env env, void *arg) {
  socket_send *job = arg;
  (void)env;
  int64_t deadline = now_ms() + job->wait_ms;
  while (job->done < job->length) {
    ssize_t sent = send(job->fd, job->data + job->done, job->length - job->done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent > 0) {
      job->done += (size_t)sent;
      continue;
    }
    if (sent < 0 && errno == EINTR) continue;
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      int64_t left = deadline - now_ms();
      if (left <= 0) break; /* the socket stayed full: the caller sends the rest */
      struct pollfd pfd = { job->fd, POLLOUT, 0 };
      int ready = poll(&pfd, 1, (int)left);
      if (ready < 0 && errno != EINTR) {
        job->error = errno;
        break;
      }
      continue;
    }
    job->error = sent < 0 ? errno : EIO;
    break;
  }
  close(job->fd);
  job->fd = -1;
}

static void send_complete(napi_env env, napi_status status, void *arg) {
  socket_send *job = arg;
  napi_value result;
  if (job->fd >= 0) close(job->fd);
  int64_t value = status != napi_ok ? -(int64_t)EIO : job->error != 0 ? -(int64_t)job->error : (int64_t)job->done;
  napi_create_int64(env, value, &result);
  napi_resolve_deferred(env, job->deferred, result);
  napi_delete_reference(env, job->buffer);
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value send_all(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 5) return fail(env, "sendAll(fd, buffer, offset, length, waitMs)");
  int32_t fd, wait_ms;
  void *data;
  size_t size;
  uint32_t offset, length;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) return fail(env, "fd must be a non-negative number");
  if (napi_get_buffer_info(env, argv[1], &data, &size) != napi_ok) return fail(env, "buffer must be a Buffer");
  if (napi_get_value_uint32(env, argv[2], &offset) != napi_ok || napi_get_value_uint32(env, argv[3], &length) != napi_ok) return fail(env, "offset and length must be numbers");
  if (napi_get_value_int32(env, argv[4], &wait_ms) != napi_ok || wait_ms < 0) return fail(env, "waitMs must be a non-negative number");
  if ((size_t)offset > size || (size_t)length > size - offset) return fail(env, "offset + length is past the end of the buffer");
  int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (own < 0) {
    napi_value promise, value;
    napi_deferred deferred;
    napi_create_promise(env, &deferred, &promise);
    napi_create_int64(env, -(int64_t)errno, &value);
    napi_resolve_deferred(env, deferred, value);
    return promise;
  }
  socket_send *job = calloc(1, sizeof *job);
  if (job == NULL) {
    close(own);
    return fail(env, "out of memory");
  }
  job->fd = own;
  job->data = (const char *)data + offset;
  job->length = length;
  job->wait_ms = wait_ms;
  napi_value promise, name;
  napi_create_string_utf8(env, "tandem:sendAll", NAPI_AUTO_LENGTH, &name);
  if (napi_create_reference(env, argv[1], 1, &job->buffer) != napi_ok) {
    close(own);
    free(job);
    return fail(env, "sendAll: could not hold the buffer");
  }
  if (napi_create_async_work(env, NULL, name, send_execute, send_complete, job, &job->work) != napi_ok) {
    napi_delete_reference(env, job->buffer);
    close(own);
    free(job);
    return fail(env, "sendAll: could not create the work");
  }
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok || napi_queue_async_work(env, job->work) != napi_ok) {
    napi_delete_async_work(env, job->work);
    napi_delete_reference(env, job->buffer);
    close(own);
    free(job);
    return fail(env, "sendAll: could not queue the send");
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
  napi_create_function(env, "sendAll", NAPI_AUTO_LENGTH, send_all, NULL, &fn);
  napi_set_named_property(env, exports, "sendAll", fn);
  register_sd_notify(env, exports);
  return exports;
}
