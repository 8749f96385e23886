// SPDX-License-Identifier: Apache-2.0
/*
 * The event-loop chores both h2o servers share (see h2oloop.h). The teardown half works around
 * h2o 2.2.5's leaks at thread end, each explained where it is done.
 */
#define _GNU_SOURCE /* dl_iterate_phdr */
#include "common/h2oloop.h"

#include <errno.h>
#include <link.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"

/* An accepted connection, known so that stopping can end the idle keep-alive ones. */
struct tracked {
    h2o_linklist_t link;
    h2o_socket_t *sock;
};

static void on_tracked_close(void *data)
{
    struct tracked *t = data;

    h2o_linklist_unlink(&t->link);
    free(t);
}

void gh_loop_accept(h2o_socket_t *listener, h2o_accept_ctx_t *ctx, h2o_linklist_t *conns, int batch)
{
    for (int i = 0; i < batch; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        struct tracked *t;
        if (sock == NULL)
            return;
        if ((t = calloc(1, sizeof *t)) == NULL) {
            h2o_socket_close(sock);
            continue;
        }
        t->sock = sock;
        h2o_linklist_insert(conns, &t->link);
        sock->on_close.cb = on_tracked_close; /* before h2o_accept, which may close it */
        sock->on_close.data = t;
        h2o_accept(ctx, sock);
    }
}

void gh_loop_shutdown_conns(h2o_linklist_t *conns, int how, int (*spare)(h2o_socket_t *sock))
{
    for (h2o_linklist_t *node = conns->next; node != conns; node = node->next) {
        struct tracked *t = H2O_STRUCT_FROM_MEMBER(struct tracked, link, node);
        if (spare == NULL || !spare(t->sock))
            shutdown(h2o_socket_get_fd(t->sock), how);
    }
}

static int tls_failure(SSL_CTX *tls, char *error, size_t cap, const char *what, const char *file)
{
    char reason[256] = "unknown error";
    unsigned long e = ERR_peek_last_error();

    if (e != 0)
        ERR_error_string_n(e, reason, sizeof reason);
    ERR_clear_error();
    SSL_CTX_free(tls);
    snprintf(error, cap, "%s %s: %s", what, file, reason);
    return GH_ERR_IO;
}

int gh_loop_tls_new(const char *cert, const char *key, int http2, SSL_CTX **out, char *error,
                    size_t cap)
{
    SSL_CTX *tls = SSL_CTX_new(TLS_server_method());

    *out = NULL;
    if (tls == NULL)
        return tls_failure(NULL, error, cap, "cannot create a TLS context for", cert);
    SSL_CTX_set_min_proto_version(tls, TLS1_2_VERSION);
    SSL_CTX_set_options(tls, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(tls, cert) != 1)
        return tls_failure(tls, error, cap, "cannot load the TLS certificate", cert);
    if (SSL_CTX_use_PrivateKey_file(tls, key, SSL_FILETYPE_PEM) != 1)
        return tls_failure(tls, error, cap, "cannot load the TLS key", key);
    if (SSL_CTX_check_private_key(tls) != 1)
        return tls_failure(tls, error, cap, "the TLS key does not match the certificate", cert);
    if (http2) /* h2 first, then http/1.1, for clients that offer both */
        h2o_ssl_register_alpn_protocols(tls, h2o_alpn_protocols);
    *out = tls;
    return GH_OK;
}

void gh_h2oloop_run_once(h2o_evloop_t *loop, int32_t max_wait_ms)
{
    if (h2o_evloop_run(loop, max_wait_ms) != 0 && errno != EINTR) {
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
}

uint64_t gh_h2oloop_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * h2o 2.2.5's h2o_evloop_destroy frees the loop but never closes its epoll descriptor, an int
 * right after h2o_evloop_t in the epoll backend's private struct. It is read from there only for
 * this library version and closed only when /proc says it is an epoll instance, so another
 * layout leaks one descriptor instead of closing somebody else's.
 */
static int loop_epoll_fd(h2o_evloop_t *loop)
{
#if defined(__linux__) && H2O_LIBRARY_VERSION_MAJOR == 0 && H2O_LIBRARY_VERSION_MINOR == 13
    struct layout {
        h2o_evloop_t super;
        int ep;
    };
    char path[64], target[64];
    int fd;
    ssize_t n;

    memcpy(&fd, (const char *)loop + offsetof(struct layout, ep), sizeof fd);
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    if (fd < 0 || (n = readlink(path, target, sizeof target - 1)) < 0)
        return -1;
    target[n] = '\0';
    return strcmp(target, "anon_inode:[eventpoll]") == 0 ? fd : -1;
#else
    (void)loop;
    return -1;
#endif
}

void gh_loop_destroy(h2o_context_t *ctx, h2o_evloop_t *loop)
{
    int epoll_fd = loop_epoll_fd(loop);

    h2o_context_dispose(ctx);
    free(ctx->queue); /* h2o_multithread_destroy_queue closes its pipe but never frees it */
    h2o_evloop_destroy(loop);
    if (epoll_fd >= 0)
        close(epoll_fd);
}

/* The calling thread's TLS block of the module that holds `inside` (libh2o's). */
struct tls_block {
    const void *inside;
    const char *base;
    size_t size;
};

static int find_tls_block(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct tls_block *b = arg;

    (void)size;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const char *base = info->dlpi_tls_data;
        size_t memsz = info->dlpi_phdr[i].p_memsz;
        if (info->dlpi_phdr[i].p_type != PT_TLS || base == NULL)
            continue;
        if ((const char *)b->inside >= base && (const char *)b->inside < base + memsz) {
            b->base = base;
            b->size = memsz;
            return 1;
        }
    }
    return 0;
}

/*
 * h2o 2.2.5 recycles HTTP/2 write buffers through a thread-local list that is static in its
 * library (`wbuf_buffer_prototype`), so nothing frees them when a worker ends. It lives in the
 * same TLS block as the public h2o_socket_buffer_prototype and is the one buffer prototype there
 * whose initial buffer has HTTP/2's 81920 bytes: found by that signature, used only when exactly
 * one place in the block has it.
 */
static h2o_buffer_prototype_t *find_http2_buffers(void)
{
    enum { HTTP2_OUTBUF = 81920, RECYCLE_MAX = 16 };
    struct tls_block b = {&h2o_socket_buffer_prototype, NULL, 0};
    h2o_buffer_prototype_t *found = NULL;
    int matches = 0;

    dl_iterate_phdr(find_tls_block, &b);
    for (size_t off = 0; b.base != NULL && off + sizeof *found <= b.size; off += sizeof(void *)) {
        h2o_buffer_prototype_t *p = (h2o_buffer_prototype_t *)(uintptr_t)(b.base + off);
        if (p->allocator.max == RECYCLE_MAX && p->allocator.cnt <= RECYCLE_MAX &&
            p->_initial_buf.capacity == HTTP2_OUTBUF && p->_initial_buf.size == 0 &&
            p->_initial_buf.bytes == NULL && p->_initial_buf._prototype == NULL) {
            found = p;
            matches++;
        }
    }
    return matches == 1 ? found : NULL;
}

/*
 * h2o keeps per-thread free lists (socket buffers, HTTP/2 write buffers, memory-pool chunks) that
 * nothing empties when a thread ends. The socket buffers' list is public, the HTTP/2 one is
 * found above. The pool chunks' list is emptied by taking more
 * chunks from a pool than the list holds (16 in 2.2.5) and freeing them ourselves.
 */
void gh_loop_release_thread_caches(int spoke_http2)
{
    enum { CHUNKS = 64 };
    h2o_mem_recycle_t *buffers = &h2o_socket_buffer_prototype.allocator;
    void *chunks[CHUNKS];
    size_t taken = 0, piece;
    h2o_mem_pool_t pool;

    while (buffers->cnt != 0)
        free(h2o_mem_alloc_recycle(buffers, 0));
    h2o_buffer_prototype_t *http2 = spoke_http2 ? find_http2_buffers() : NULL;
    while (http2 != NULL && http2->allocator.cnt != 0)
        free(h2o_mem_alloc_recycle(&http2->allocator, 0));
    h2o_mem_init_pool(&pool);
    piece = (pool.chunk_offset / 4 - 1) & ~(size_t)15; /* still cut from a chunk */
    for (int tries = 0; taken < CHUNKS && tries < CHUNKS * 64; tries++) {
        void *before = pool.chunks;
        h2o_mem_alloc_pool(&pool, piece);
        if (pool.chunks != before)
            chunks[taken++] = pool.chunks;
    }
    for (size_t i = 0; i < taken; i++)
        free(chunks[i]);
    pool.chunks = NULL;
    h2o_mem_clear_pool(&pool);
}
