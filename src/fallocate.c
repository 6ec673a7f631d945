// posix_fallocate(fd, offset, length) for Node, run on the libuv thread pool:
// reserving gigabytes can take a while where the filesystem emulates it.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <node_api.h>

typedef struct {
  int fd;
  int64_t offset;
  int64_t length;
  int result;
  napi_deferred deferred;
  napi_async_work work;
} fallocate_job;

static void execute(napi_env env, void* data) {
  (void)env;
  fallocate_job* job = data;
  job->result = posix_fallocate(job->fd, (off_t)job->offset, (off_t)job->length);
}

static void complete(napi_env env, napi_status status, void* data) {
  fallocate_job* job = data;
  napi_value value;
  if (status == napi_ok && job->result == 0) {
    napi_get_undefined(env, &value);
    napi_resolve_deferred(env, job->deferred, value);
  } else {
    int code = status == napi_ok ? job->result : ECANCELED;
    napi_value message, errno_value;
    napi_create_string_utf8(env, strerror(code), NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &value);
    napi_create_int32(env, code, &errno_value);
    napi_set_named_property(env, value, "errno", errno_value);
    napi_reject_deferred(env, job->deferred, value);
  }
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value fallocate_async(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], promise, name;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  int64_t offset, length;
  if (argc != 3 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_int64(env, argv[1], &offset) != napi_ok ||
      napi_get_value_int64(env, argv[2], &length) != napi_ok ||
      fd < 0 || offset < 0 || length <= 0) {
    napi_throw_type_error(env, NULL, "fallocate(fd, offset, length) needs integers, length > 0");
    return NULL;
  }
  fallocate_job* job = calloc(1, sizeof(*job));
  if (job == NULL) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  job->fd = fd;
  job->offset = offset;
  job->length = length;
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, "fallocate", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return promise;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "fallocate", NAPI_AUTO_LENGTH, fallocate_async, NULL, &fn);
  napi_set_named_property(env, exports, "fallocate", fn);
  return exports;
}
