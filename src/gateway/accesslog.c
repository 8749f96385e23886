// SPDX-License-Identifier: Apache-2.0
/*
 * Two buffers swap between the workers and the writer thread: workers append to `pending` under
 * the lock (a memcpy), the writer takes the whole of it, releases the lock and writes it to the
 * stream in one locked fwrite, so its lines never interleave with gh_log's.
 * The writer is woken by the first line into an empty buffer, then lets lines gather for
 * FLUSH_MS (or until HIGH_WATER bytes) before it writes: waking it for every line cost a futex
 * wake, two context switches and a write per request, about a tenth of a proxied request's CPU.
 * Escaping lives here too because every field of an access-log line comes from a client or from
 * configuration.
 */
#include "gateway/accesslog.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "common/utf8.h"

#define FLUSH_MS   20         /* the longest a line waits in memory under load */
#define HIGH_WATER (64 << 10) /* or this many bytes: a worker wakes the writer early */

struct gh_accesslog {
    FILE *out;
    size_t max;
    atomic_uint_fast64_t *dropped;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    char *pending; /* under lock */
    size_t len, cap;
    int stopping; /* under lock */
};

/* Under the lock: waits until FLUSH_MS have passed, HIGH_WATER bytes are queued or we stop. */
static void gather(struct gh_accesslog *log)
{
    struct timespec until;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += FLUSH_MS * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (log->len < HIGH_WATER && !log->stopping)
        if (pthread_cond_timedwait(&log->wake, &log->lock, &until) != 0)
            break; /* ETIMEDOUT */
}

static void *writer_main(void *arg)
{
    struct gh_accesslog *log = arg;
    char *mine = NULL;
    size_t mine_cap = 0;

    pthread_mutex_lock(&log->lock);
    for (;;) {
        while (log->len == 0 && !log->stopping)
            pthread_cond_wait(&log->wake, &log->lock);
        if (log->len == 0)
            break; /* stopping, and everything is written */
        gather(log);
        char *full = log->pending;
        size_t full_len = log->len, full_cap = log->cap;
        log->pending = mine; /* the workers fill the other buffer meanwhile */
        log->cap = mine_cap;
        log->len = 0;
        pthread_mutex_unlock(&log->lock);
        flockfile(log->out);
        fwrite(full, 1, full_len, log->out);
        fflush(log->out);
        funlockfile(log->out);
        mine = full;
        mine_cap = full_cap;
        pthread_mutex_lock(&log->lock);
    }
    pthread_mutex_unlock(&log->lock);
    free(mine);
    return NULL;
}

int gh_accesslog_start(FILE *out, size_t max_buffered, atomic_uint_fast64_t *dropped,
                       struct gh_accesslog **logp)
{
    struct gh_accesslog *log = calloc(1, sizeof *log);
    sigset_t all, old;
    int rc;

    *logp = NULL;
    if (log == NULL)
        return GH_ERR_NOMEM;
    log->out = out;
    log->max = max_buffered;
    log->dropped = dropped;
    pthread_mutex_init(&log->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* FLUSH_MS is not moved by clock steps */
    pthread_cond_init(&log->wake, &attr);
    pthread_condattr_destroy(&attr);
    /* signals belong to the process's own threads */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&log->thread, NULL, writer_main, log);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&log->wake);
        pthread_mutex_destroy(&log->lock);
        free(log);
        return GH_ERR_IO;
    }
    *logp = log;
    return GH_OK;
}

void gh_accesslog_write(struct gh_accesslog *log, const char *line, size_t len)
{
    int wake, lost = 0;

    pthread_mutex_lock(&log->lock);
    if (log->len + len > log->cap) {
        size_t cap = log->cap != 0 ? log->cap : 64 * 1024;
        while (cap < log->len + len)
            cap *= 2;
        char *grown = cap <= log->max ? realloc(log->pending, cap) : NULL;
        if (grown != NULL) {
            log->pending = grown;
            log->cap = cap;
        } else {
            lost = 1;
        }
    }
    if (!lost) {
        memcpy(log->pending + log->len, line, len);
        log->len += len;
    }
    /* the writer sleeps until the first line, then gathers until FLUSH_MS or HIGH_WATER */
    wake = !lost && (log->len == len || (log->len >= HIGH_WATER && log->len - len < HIGH_WATER));
    pthread_mutex_unlock(&log->lock);
    if (wake)
        pthread_cond_signal(&log->wake);
    if (lost && log->dropped != NULL)
        atomic_fetch_add_explicit(log->dropped, 1, memory_order_relaxed);
}

void gh_accesslog_stop(struct gh_accesslog *log)
{
    if (log == NULL)
        return;
    pthread_mutex_lock(&log->lock);
    log->stopping = 1;
    pthread_mutex_unlock(&log->lock);
    pthread_cond_signal(&log->wake);
    pthread_join(log->thread, NULL);
    pthread_cond_destroy(&log->wake);
    pthread_mutex_destroy(&log->lock);
    free(log->pending);
    free(log);
}

/* ---- lines ---- */

void gh_line_init(struct gh_line *l, char *buf, size_t cap)
{
    l->buf = buf;
    l->cap = cap;
    l->len = 0;
    l->full = 0;
}

static void put(struct gh_line *l, const char *s, size_t n)
{
    /* 3 bytes stay free for the closing "}\n" and the NUL */
    if (l->full || l->len + n + 3 > l->cap) {
        l->full = 1;
        return;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void put_key(struct gh_line *l, const char *key)
{
    put(l, l->len == 0 ? "{\"" : ",\"", 2);
    put(l, key, strlen(key));
    put(l, "\":", 2);
}

/* Client bytes become valid JSON: quotes, backslashes and controls are escaped, each byte that is
 * not part of valid UTF-8 becomes \u00XX (XX: the byte) so the line stays valid UTF-8 JSON
 * whatever was sent. \u00XX rather than U+FFFD: the byte stays readable in the raw line (valid
 * UTF-8 is written as is, never escaped, so an escape \u0080..\u00ff there names a raw byte). */
static void put_escaped(struct gh_line *l, const char *value, size_t len)
{
    const unsigned char *s = (const unsigned char *)value;
    char esc[8];

    for (size_t i = 0; i < len && !l->full;) {
        size_t run = 0;
        while (i + run < len && s[i + run] >= 0x20 && s[i + run] < 0x80 && s[i + run] != '"' &&
               s[i + run] != '\\')
            run++;
        if (run > 0) {
            put(l, value + i, run);
            i += run;
            continue;
        }
        size_t seq = s[i] >= 0x80 ? gh_utf8_sequence(s + i, len - i) : 0;
        if (seq > 0) {
            put(l, value + i, seq);
            i += seq;
            continue;
        }
        if (s[i] == '"' || s[i] == '\\') {
            esc[0] = '\\';
            esc[1] = (char)s[i];
            put(l, esc, 2);
        } else {
            snprintf(esc, sizeof esc, "\\u%04x", s[i]);
            put(l, esc, 6);
        }
        i++;
    }
}

/* A field that does not fit is left out whole, so the line stays one JSON object. */
static void field_done(struct gh_line *l, size_t mark)
{
    if (l->full) {
        l->len = mark;
        l->full = 0;
    }
}

void gh_line_str(struct gh_line *l, const char *key, const char *value, size_t len, size_t max)
{
    size_t mark = l->len;

    put_key(l, key);
    if (value == NULL) {
        put(l, "null", 4);
    } else {
        put(l, "\"", 1);
        put_escaped(l, value, len < max ? len : max);
        put(l, "\"", 1);
    }
    field_done(l, mark);
}

void gh_line_int(struct gh_line *l, const char *key, int64_t value)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%" PRId64, value);
    size_t mark = l->len;

    put_key(l, key);
    put(l, num, (size_t)n);
    field_done(l, mark);
}

void gh_line_null(struct gh_line *l, const char *key)
{
    size_t mark = l->len;

    put_key(l, key);
    put(l, "null", 4);
    field_done(l, mark);
}

int gh_line_end(struct gh_line *l)
{
    const char *tail = l->len == 0 ? "{}\n" : "}\n";
    size_t n = strlen(tail);

    if (l->len + n + 1 > l->cap)
        return 0;
    memcpy(l->buf + l->len, tail, n + 1);
    l->len += n;
    return 1;
}
