/*
 * sd_notify for the agent under systemd (Type=notify): one datagram to the
 * AF_UNIX socket named by $NOTIFY_SOCKET, sent by the agent's own process so
 * that NotifyAccess=main accepts it. Node has no Unix datagram sockets, and
 * spawning systemd-notify races its own exit (systemd may no longer find the
 * sender's unit when the message arrives), so it lives here.
 *
 * sdNotify(socketPath, message) -> 0, or -errno. A path starting with '@'
 * names an abstract socket. Never blocks (MSG_DONTWAIT).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <node_api.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static napi_value result(napi_env env, int32_t value) {
  napi_value out;
  napi_create_int32(env, value, &out);
  return out;
}

static napi_value sd_notify_send(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2) {
    napi_throw_type_error(env, NULL, "sdNotify(socketPath, message)");
    return NULL;
  }
  struct sockaddr_un address;
  memset(&address, 0, sizeof(address));
  address.sun_family = AF_UNIX;
  size_t path_length;
  if (napi_get_value_string_utf8(env, argv[0], NULL, 0, &path_length) != napi_ok) {
    napi_throw_type_error(env, NULL, "socketPath must be a string");
    return NULL;
  }
  if (path_length == 0 || path_length >= sizeof(address.sun_path)) return result(env, -ENAMETOOLONG);
  napi_get_value_string_utf8(env, argv[0], address.sun_path, sizeof(address.sun_path), &path_length);
  if (address.sun_path[0] == '@') address.sun_path[0] = '\0';
  size_t message_length;
  if (napi_get_value_string_utf8(env, argv[1], NULL, 0, &message_length) != napi_ok) {
    napi_throw_type_error(env, NULL, "message must be a string");
    return NULL;
  }
  char *message = malloc(message_length + 1);
  if (message == NULL) return result(env, -ENOMEM);
  napi_get_value_string_utf8(env, argv[1], message, message_length + 1, &message_length);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int error = errno;
    free(message);
    return result(env, -error);
  }
  socklen_t address_length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_length);
  ssize_t sent = sendto(fd, message, message_length, MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&address, address_length);
  int error = sent < 0 ? errno : 0;
  close(fd);
  free(message);
  return result(env, -error);
}

void register_sd_notify(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "sdNotify", NAPI_AUTO_LENGTH, sd_notify_send, NULL, &fn);
  napi_set_named_property(env, exports, "sdNotify", fn);
}
