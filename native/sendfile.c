/*
 * sendfile(2) for layer downloads: the kernel moves the bytes from the page cache to the
 * socket, with no copy through JavaScript buffers.
 *
 * Node's socket is non-blocking and owned by libuv's event loop, which this code must not
 * disturb. So a transfer runs on a thread of its own: sendfile() until the socket buffer is
 * full (EAGAIN), poll() for POLLOUT, repeat. It works on dup()s of both descriptors, so an
 * fd number that Node closes and reuses while the thread runs is never written to. The
 * result (error code and bytes sent) comes back to JavaScript through a thread-safe
 * function. cancel() makes the thread stop at its next wake-up (at most 100 ms).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <time.h>
#include <unistd.h>

#define WAKE_MS 100
/* One sendfile() call moves at most this much, so cancel() is seen between calls. */
#define MAX_CALL (8 * 1024 * 1024)

typedef struct {
  int sock;
  int file;
  int64_t offset;
  int64_t remaining;
  int64_t sent;
  int64_t stall_ms;
  int error; /* errno, 0 on success; ECANCELED when cancelled, ETIMEDOUT when stalled */
  atomic_int cancelled;
  atomic_int refs; /* the thread and the JavaScript handle */
  napi_threadsafe_function done;
} job_t;

static void job_release(job_t *job) {
  if (atomic_fetch_sub(&job->refs, 1) == 1) free(job);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *run(void *arg) {
  job_t *job = arg;
  int64_t last_progress = now_ms();
  while (job->remaining > 0) {
    if (atomic_load(&job->cancelled)) {
      job->error = ECANCELED;
      break;
    }
    off_t offset = (off_t)job->offset;
    size_t count = job->remaining > MAX_CALL ? MAX_CALL : (size_t)job->remaining;
    ssize_t n = sendfile(job->sock, job->file, &offset, count);
    if (n > 0) {
      job->offset += n;
      job->remaining -= n;
      job->sent += n;
      last_progress = now_ms();
      continue;
    }
    if (n == 0) {
      job->error = ENODATA; /* the file is shorter than its recorded size */
      break;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      job->error = errno;
      break;
    }
    struct pollfd pfd = {.fd = job->sock, .events = POLLOUT};
    int r = poll(&pfd, 1, WAKE_MS);
    if (r < 0 && errno != EINTR) {
      job->error = errno;
      break;
    }
    if (r == 0 && job->stall_ms > 0 && now_ms() - last_progress >= job->stall_ms) {
      job->error = ETIMEDOUT;
      break;
    }
  }
  close(job->sock);
  close(job->file);
  napi_threadsafe_function done = job->done;
  /* Refused only while the environment shuts down: call_js will not run, so let go here. */
  if (napi_call_threadsafe_function(done, job, napi_tsfn_blocking) != napi_ok) job_release(job);
  napi_release_threadsafe_function(done, napi_tsfn_release);
  return NULL;
}

/* On the JavaScript thread: callback(errno, bytesSent). */
static void call_js(napi_env env, napi_value callback, void *context, void *data) {
  (void)context;
  job_t *job = data;
  if (env != NULL && callback != NULL) {
    napi_value argv[2], undefined;
    napi_create_int32(env, job->error, &argv[0]);
    napi_create_int64(env, job->sent, &argv[1]);
    napi_get_undefined(env, &undefined);
    napi_call_function(env, undefined, callback, 2, argv, NULL);
  }
  job_release(job);
}

static void handle_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  job_release(data);
}

static napi_value throw_error(napi_env env, const char *message) {
  napi_throw_error(env, NULL, message);
  return NULL;
}

/* start(socketFd, fileFd, offset, length, stallMs, callback) -> handle for cancel() */
static napi_value start(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 6)
    return throw_error(env, "start(socketFd, fileFd, offset, length, stallMs, callback)");
  int32_t sock, file;
  int64_t offset, length, stall_ms;
  if (napi_get_value_int32(env, argv[0], &sock) != napi_ok || napi_get_value_int32(env, argv[1], &file) != napi_ok ||
      napi_get_value_int64(env, argv[2], &offset) != napi_ok || napi_get_value_int64(env, argv[3], &length) != napi_ok ||
      napi_get_value_int64(env, argv[4], &stall_ms) != napi_ok || sock < 0 || file < 0 || offset < 0 || length < 0)
    return throw_error(env, "start: bad arguments");

  job_t *job = calloc(1, sizeof *job);
  if (job == NULL) return throw_error(env, "start: out of memory");
  job->offset = offset;
  job->remaining = length;
  job->stall_ms = stall_ms;
  atomic_init(&job->cancelled, 0);
  atomic_init(&job->refs, 2);
  job->sock = fcntl(sock, F_DUPFD_CLOEXEC, 0);
  job->file = fcntl(file, F_DUPFD_CLOEXEC, 0);
  if (job->sock < 0 || job->file < 0) {
    if (job->sock >= 0) close(job->sock);
    if (job->file >= 0) close(job->file);
    free(job);
    return throw_error(env, "start: dup failed");
  }

  napi_value name, handle;
  napi_create_string_utf8(env, "sendfile", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[5], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &job->done) != napi_ok) {
    close(job->sock);
    close(job->file);
    free(job);
    return throw_error(env, "start: cannot create the completion callback");
  }
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  pthread_t thread;
  int err = pthread_create(&thread, &attr, run, job);
  pthread_attr_destroy(&attr);
  if (err != 0) {
    napi_release_threadsafe_function(job->done, napi_tsfn_release);
    close(job->sock);
    close(job->file);
    free(job);
    return throw_error(env, "start: cannot start a thread");
  }
  napi_create_external(env, job, handle_finalize, NULL, &handle);
  return handle;
}

static napi_value cancel(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 ||
      napi_get_value_external(env, argv[0], &data) != napi_ok)
    return throw_error(env, "cancel(handle)");
  atomic_store(&((job_t *)data)->cancelled, 1);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "start", NAPI_AUTO_LENGTH, start, NULL, &fn);
  napi_set_named_property(env, exports, "start", fn);
  napi_create_function(env, "cancel", NAPI_AUTO_LENGTH, cancel, NULL, &fn);
  napi_set_named_property(env, exports, "cancel", fn);
  return exports;
}
