// SPDX-License-Identifier: Apache-2.0
/*
 * Connections of src/http/sock.c on one loop, over socketpairs and real loopback TCP: reading and
 * writing, back-pressure with a slow reader, the input bound (reading pauses, consuming resumes,
 * nothing lost), end-of-file, a reset, a refused connect, and TLS made with tlskit: handshakes
 * and ALPN, a failed verification and data both ways larger than the socket buffers. Conditions
 * are waited for turn by turn, never by time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/error.h"
#include "http/loop.h"
#include "http/sock.h"
#include "tlskit.h"

/* Turns the loop until `cond`; a stall fails instead of hanging. */
#define RUN_UNTIL(loop, cond)                                                                      \
    do {                                                                                           \
        for (int turn_ = 0; !(cond); turn_++) {                                                    \
            assert_true(turn_ < 3000);                                                             \
            gh_loop_run_once((loop), 20);                                                          \
        }                                                                                          \
    } while (0)

struct end {
    struct gh_sock s;
    int reads, eof, err, written, written_err, ready, ready_status;
    int consume; /* on_read consumes everything into `got` */
    char *got;   /* what was consumed */
    size_t got_len, got_cap;
};

static void end_keep(struct end *e, const char *p, size_t n)
{
    if (e->got_len + n > e->got_cap) {
        e->got_cap = (e->got_len + n) * 2;
        assert_non_null(e->got = realloc(e->got, e->got_cap));
    }
    memcpy(e->got + e->got_len, p, n);
    e->got_len += n;
}

static void on_read(struct gh_sock *s, int status)
{
    struct end *e = s->data;

    e->reads++;
    if (status == GH_SOCK_EOF)
        e->eof++;
    if (status == GH_SOCK_ERROR)
        e->err++;
    assert_true(s->in_len <= s->in_max);
    if (e->consume && s->in_len > 0) {
        end_keep(e, s->in, s->in_len);
        gh_sock_consume(s, s->in_len);
    }
}

static void on_written(struct gh_sock *s, int status)
{
    struct end *e = s->data;

    if (status == GH_SOCK_OK)
        e->written++;
    else
        e->written_err++;
}

static void on_ready(struct gh_sock *s, int status)
{
    struct end *e = s->data;

    e->ready++;
    e->ready_status = status;
}

static void end_clear(struct end *e)
{
    gh_sock_close(&e->s);
    free(e->got);
    memset(e, 0, sizeof *e);
}

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i * 7 % 251);
}

static char *pattern_make(size_t n)
{
    char *p = malloc(n);

    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)pattern(i);
    return p;
}

static void pattern_check(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)p[i] != pattern(i))
            fail_msg("byte %zu differs", i);
    }
}

/* ---- plain ---- */

static void test_socketpair_read_write(void **state)
{
    struct gh_loop *loop;
    struct end a = {0};
    int fds[2];
    char buf[16];

    assert_int_equal(gh_loop_new(&loop), GH_OK);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    a.s.data = &a;
    assert_int_equal(gh_sock_init(&a.s, loop, fds[0], 1024), GH_OK);
    assert_int_equal(write(fds[1], "hello", 5), 5);
    gh_sock_read_start(&a.s, on_read);
    assert_int_equal(a.reads, 0); /* never from inside the call */
    RUN_UNTIL(loop, a.reads > 0);
    assert_int_equal(a.s.in_len, 5);
    assert_memory_equal(a.s.in, "hello", 5);
    gh_sock_consume(&a.s, 5);
    assert_null(a.s.in); /* an empty input holds no buffer */

    struct iovec iov[2] = {{"wor", 3}, {"ld", 2}};
    assert_int_equal(gh_sock_write(&a.s, iov, 2, on_written), GH_OK);
    assert_int_equal(a.written, 0);
    RUN_UNTIL(loop, a.written > 0);
    assert_int_equal(gh_sock_pending(&a.s), 0);
    assert_int_equal(read(fds[1], buf, sizeof buf), 5);
    assert_memory_equal(buf, "world", 5);

    /* the peer closes: end-of-file */
    close(fds[1]);
    RUN_UNTIL(loop, a.eof > 0);
    assert_int_equal(a.err, 0);
    end_clear(&a);
    gh_sock_close(&a.s); /* twice: harmless */
    gh_loop_free(loop);
}

/* A listening socket on 127.0.0.1 and an ephemeral port. */
static int listen_any(struct sockaddr_in *addr)
{
    socklen_t len = sizeof *addr;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)addr, sizeof *addr), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)addr, &len), 0);
    return fd;
}

/* A client sock connected over loopback TCP and the server's sock for it. */
static void tcp_pair(struct gh_loop *loop, struct end *client, struct end *server, size_t in_max)
{
    struct sockaddr_in addr;
    int lfd = listen_any(&addr), fd;

    client->s.data = client;
    server->s.data = server;
    assert_int_equal(
        gh_sock_connect(&client->s, loop, (struct sockaddr *)&addr, sizeof addr, in_max, on_ready),
        GH_OK);
    RUN_UNTIL(loop, client->ready > 0);
    assert_int_equal(client->ready_status, GH_SOCK_OK);
    assert_true((fd = accept(lfd, NULL, NULL)) >= 0);
    close(lfd);
    assert_int_equal(gh_sock_init(&server->s, loop, fd, in_max), GH_OK);
}

static void test_tcp_read_write_and_peer(void **state)
{
    struct gh_loop *loop;
    struct end c = {0}, s = {0};
    struct sockaddr_storage ss;

    assert_int_equal(gh_loop_new(&loop), GH_OK);
    tcp_pair(loop, &c, &s, 4096);
    assert_int_equal(gh_sock_peer(&s.s, &ss), sizeof(struct sockaddr_in));
    assert_int_equal(ss.ss_family, AF_INET);
    s.consume = c.consume = 1;
    gh_sock_read_start(&s.s, on_read);
    gh_sock_read_start(&c.s, on_read);
    struct iovec iov = {"ping", 4};
    assert_int_equal(gh_sock_write(&c.s, &iov, 1, NULL), GH_OK);
    RUN_UNTIL(loop, s.got_len == 4);
    iov = (struct iovec){"pong", 4};
    assert_int_equal(gh_sock_write(&s.s, &iov, 1, on_written), GH_OK);
    RUN_UNTIL(loop, c.got_len == 4 && s.written > 0);
    assert_memory_equal(c.got, "pong", 4);
    /* a half close: the server reads end-of-file and can still answer */
    gh_sock_shutdown_write(&c.s);
    gh_sock_shutdown_write(&c.s);
    RUN_UNTIL(loop, s.eof > 0);
    iov = (struct iovec){"bye", 3};
    assert_int_equal(gh_sock_write(&s.s, &iov, 1, NULL), GH_OK);
    RUN_UNTIL(loop, c.got_len == 7);
    assert_int_equal(gh_sock_write(&c.s, &iov, 1, NULL), GH_ERR_IO); /* after shutdown */
    end_clear(&c);
    end_clear(&s);
    gh_loop_free(loop);
}

/* More than the kernel takes: the rest waits in the output buffer, which the owner sees grow;
 * the callback comes once all of it reached the slow reader, every byte in order. */
static void test_tcp_backpressure(void **state)
{
    enum { CHUNK = 16 << 20 };
    struct gh_loop *loop;
    struct end c = {0}, s = {0};
    char *data = pattern_make(2 * CHUNK);

    assert_int_equal(gh_loop_new(&loop), GH_OK);
    tcp_pair(loop, &c, &s, 64 << 10);
    struct iovec iov = {data, CHUNK};
    assert_int_equal(gh_sock_write(&c.s, &iov, 1, on_written), GH_OK);
    size_t first = gh_sock_pending(&c.s);
    assert_true(first > 0);
    iov = (struct iovec){data + CHUNK, CHUNK};
    assert_int_equal(gh_sock_write(&c.s, &iov, 1, on_written), GH_OK);
    assert_true(gh_sock_pending(&c.s) > first);
    gh_loop_run_once(loop, 0);
    assert_int_equal(c.written, 0); /* nobody reads yet */
    s.consume = 1;
    gh_sock_read_start(&s.s, on_read);
    RUN_UNTIL(loop, c.written > 0);
    assert_int_equal(c.written, 1);
    assert_int_equal(gh_sock_pending(&c.s), 0);
    RUN_UNTIL(loop, s.got_len == 2 * CHUNK);
    pattern_check(s.got, s.got_len);
    free(data);
    end_clear(&c);
    end_clear(&s);
    gh_loop_free(loop);
}

/* `c` writes TOTAL bytes to `s`, whose input never grows past its in_max: reading pauses (no
 * more bytes, no more callbacks) until the owner consumes, then resumes, nothing lost. */
static void bounded_transfer(struct gh_loop *loop, struct end *c, struct end *s)
{
    enum { TOTAL = 100000 };
    char *data = pattern_make(TOTAL);
    size_t max = s->s.in_max;

    struct iovec iov = {data, TOTAL};
    assert_int_equal(gh_sock_write(&c->s, &iov, 1, on_written), GH_OK);
    gh_sock_read_start(&s->s, on_read);
    RUN_UNTIL(loop, s->s.in_len == max);
    int reads = s->reads;
    for (int i = 0; i < 20; i++)
        gh_loop_run_once(loop, 0);
    assert_int_equal(s->s.in_len, max);
    assert_int_equal(s->reads, reads);
    for (int turn = 0; s->got_len < TOTAL; turn++) {
        assert_true(turn < 20000);                        /* a reader that never resumes fails */
        size_t n = s->s.in_len > 300 ? 300 : s->s.in_len; /* partial consumes */
        end_keep(s, s->s.in, n);
        gh_sock_consume(&s->s, n);
        gh_loop_run_once(loop, s->s.in_len > 0 ? 0 : 20);
        assert_true(s->s.in_len <= max);
    }
    pattern_check(s->got, TOTAL);
    RUN_UNTIL(loop, c->written > 0);
    free(data);
}

static void test_in_max_pauses_and_resumes(void **state)
{
    struct gh_loop *loop;
    struct end c = {0}, s = {0};

    assert_int_equal(gh_loop_new(&loop), GH_OK);
    tcp_pair(loop, &c, &s, 1000);
    bounded_transfer(loop, &c, &s);
    end_clear(&c);
    end_clear(&s);
    gh_loop_free(loop);
}

/* Bytes written and a reader started before the connection is made wait for it. */
static void test_write_while_connecting(void **state)
{
    struct gh_loop *loop;
    struct end c = {0}, s = {0};
    struct sockaddr_in addr;
    int lfd = listen_any(&addr), fd;

    assert_int_equal(gh_loop_new(&loop), GH_OK);
    c.s.data = &c;
    c.consume = s.consume = 1;
    assert_int_equal(
        gh_sock_connect(&c.s, loop, (struct sockaddr *)&addr, sizeof addr, 4096, on_ready), GH_OK);
    struct iovec iov = {"early", 5};
    assert_int_equal(gh_sock_write(&c.s, &iov, 1, on_written), GH_OK);
    gh_sock_read_start(&c.s, on_read);
    assert_true((fd = accept(lfd, NULL, NULL)) >= 0);
    close(lfd);
    assert_int_equal(write(fd, "hi", 2), 2); /* may come with the connect's own edge */
    s.s.data = &s;
    assert_int_equal(gh_sock_init(&s.s, loop, fd, 4096), GH_OK);
    gh_sock_read_start(&s.s, on_read);
    RUN_UNTIL(loop, s.got_len == 5 && c.got_len == 2 && c.written > 0);
    assert_int_equal(c.ready, 1);
    assert_int_equal(c.ready_status, GH_SOCK_OK);
    assert_memory_equal(s.got, "early", 5);
    /* idle again: neither buffer is held */
    assert_null(c.s.in);
    assert_null(c.s.out);
    assert_null(s.s.in);
    end_clear(&c);
    end_clear(&s);
    gh_loop_free(loop);
}

static void test_tcp_reset(void **state)
{
    struct gh_loop *loop;
    struct end c = {0}, s = {0};
    struct linger lg = {1, 0};

    assert_int_equal(gh_loop_new(&loop), GH_OK);
    tcp_pair(loop, &c, &s, 4096);
    gh_sock_read_start(&s.s, on_read);
    gh_loop_run_once(loop, 0);
    /* the client's descriptor closes with SO_LINGER 0: an RST */
    assert_int_equal(setsockopt(c.s.io.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    end_clear(&c);
    RUN_UNTIL(loop, s.err > 0);
    assert_string_equal(gh_sock_error(&s.s), "connection reset");
    struct iovec iov = {"x", 1};
    assert_int_equal(gh_sock_write(&s.s, &iov, 1, NULL), GH_ERR_IO);
    end_clear(&s);
    gh_loop_free(loop);
}

static void test_connect_refused(void **state)
{
    struct gh_loop *loop;
    struct end c = {0};
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    /* a port that was just free: bound, never listened on, closed */
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    close(fd);
    assert_int_equal(gh_loop_new(&loop), GH_OK);
    c.s.data = &c;
    int rc = gh_sock_connect(&c.s, loop, (struct sockaddr *)&addr, sizeof addr, 4096, on_ready);
    if (rc == GH_OK) {
        RUN_UNTIL(loop, c.ready > 0);
        assert_int_equal(c.ready_status, GH_SOCK_ERROR);
    } else {
        assert_int_equal(rc, GH_ERR_IO);
    }
    assert_string_equal(gh_sock_error(&c.s), "connection refused");
    end_clear(&c);
    gh_loop_free(loop);
}

/* ---- TLS ---- */

struct tls_fixture {
    struct gh_tlskit kit;
    struct gh_loop *loop;
    struct end c, s;
};

static int tls_setup(void **state)
{
    struct tls_fixture *f = calloc(1, sizeof *f);

    assert_non_null(f);
    assert_int_equal(gh_tlskit_make(&f->kit), 0);
    assert_int_equal(gh_loop_new(&f->loop), GH_OK);
    *state = f;
    return 0;
}

static int tls_teardown(void **state)
{
    struct tls_fixture *f = *state;

    end_clear(&f->c);
    end_clear(&f->s);
    gh_loop_free(f->loop);
    gh_tlskit_clear(&f->kit);
    free(f);
    return 0;
}

/* A TLS handshake over loopback: server with h2 on or off, client offering `alpn` and checking
 * `host`. Returns when both ends heard how it went. */
static void tls_pair(struct tls_fixture *f, int http2, const char *alpn, const char *host)
{
    SSL_CTX *sctx, *cctx;
    char error[256];

    assert_int_equal(
        gh_tls_server_new(f->kit.cert_path, f->kit.key_path, http2, &sctx, error, sizeof error),
        GH_OK);
    assert_non_null(cctx = gh_tlskit_client_ctx(&f->kit, (const unsigned char *)alpn,
                                                alpn != NULL ? strlen(alpn) : 0));
    tcp_pair(f->loop, &f->c, &f->s, 64 << 10);
    f->c.ready = f->s.ready = 0;
    assert_int_equal(gh_sock_tls_accept(&f->s.s, sctx, on_ready), GH_OK);
    assert_int_equal(gh_sock_tls_connect(&f->c.s, cctx, host, on_ready), GH_OK);
    /* the SSL objects keep their contexts referenced */
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    RUN_UNTIL(f->loop, f->c.ready > 0 && f->s.ready > 0);
}

#define ALPN_BOTH "\x02h2\x08http/1.1"
#define ALPN_H1   "\x08http/1.1"

static void test_tls_alpn_h2(void **state)
{
    struct tls_fixture *f = *state;

    tls_pair(f, 1, ALPN_BOTH, "localhost");
    assert_int_equal(f->c.ready_status, GH_SOCK_OK);
    assert_int_equal(f->s.ready_status, GH_SOCK_OK);
    assert_string_equal(gh_sock_alpn(&f->s.s), "h2");
    assert_string_equal(gh_sock_alpn(&f->c.s), "h2");
}

static void test_tls_alpn_h1_when_h2_off(void **state)
{
    struct tls_fixture *f = *state;

    tls_pair(f, 0, ALPN_BOTH, "127.0.0.1"); /* an address: checked against the IP SAN */
    assert_int_equal(f->c.ready_status, GH_SOCK_OK);
    assert_string_equal(gh_sock_alpn(&f->s.s), "http/1.1");
}

static void test_tls_ipv6_literal(void **state)
{
    struct tls_fixture *f = *state;

    tls_pair(f, 1, ALPN_BOTH, "[::1]"); /* checked against the IP SAN ::1 */
    assert_int_equal(f->c.ready_status, GH_SOCK_OK);
    assert_int_equal(f->s.ready_status, GH_SOCK_OK);
}

static void test_tls_alpn_h1_offered_only(void **state)
{
    struct tls_fixture *f = *state;

    tls_pair(f, 1, ALPN_H1, "localhost");
    assert_int_equal(f->s.ready_status, GH_SOCK_OK);
    assert_string_equal(gh_sock_alpn(&f->s.s), "http/1.1");
}

static void test_tls_no_alpn(void **state)
{
    struct tls_fixture *f = *state;

    tls_pair(f, 1, NULL, "localhost");
    assert_int_equal(f->s.ready_status, GH_SOCK_OK);
    assert_string_equal(gh_sock_alpn(&f->s.s), "");
}

static void test_tls_alpn_nothing_we_speak(void **state)
{
    struct tls_fixture *f = *state;

    tls_pair(f, 0, "\x02h2", "localhost");
    assert_int_equal(f->s.ready_status, GH_SOCK_ERROR);
    assert_int_equal(f->c.ready_status, GH_SOCK_ERROR);
    assert_non_null(strstr(gh_sock_error(&f->c.s), "no application protocol"));
    assert_int_equal(f->c.s.tls_verify_failed, 0);
}

static void test_tls_verify_failure(void **state)
{
    struct tls_fixture *f = *state;

    tls_pair(f, 1, ALPN_BOTH, "wrong.example");
    assert_int_equal(f->c.ready_status, GH_SOCK_ERROR);
    assert_int_equal(f->c.s.tls_verify_failed, 1);
    assert_string_equal(gh_sock_error(&f->c.s), "certificate verify failed: hostname mismatch");
    assert_int_equal(f->s.ready_status, GH_SOCK_ERROR);
    assert_int_equal(f->s.s.tls_verify_failed, 0);
    struct iovec iov = {"x", 1};
    assert_int_equal(gh_sock_write(&f->c.s, &iov, 1, NULL), GH_ERR_IO);
}

static void test_tls_data_both_ways(void **state)
{
    enum { BIG = 16 << 20 };
    struct tls_fixture *f = *state;
    char *data = pattern_make(BIG);

    tls_pair(f, 1, ALPN_BOTH, "localhost");
    assert_int_equal(f->c.ready_status, GH_SOCK_OK);
    f->c.consume = f->s.consume = 1;
    gh_sock_read_start(&f->c.s, on_read);
    /* the server writes more than the socket buffers hold before the client reads */
    struct iovec iov = {data, BIG};
    assert_int_equal(gh_sock_write(&f->s.s, &iov, 1, on_written), GH_OK);
    assert_true(gh_sock_pending(&f->s.s) > 0);
    struct iovec two[2] = {{"GET / ", 6}, {"HTTP/1.1\r\n", 10}};
    assert_int_equal(gh_sock_write(&f->c.s, two, 2, on_written), GH_OK);
    gh_sock_read_start(&f->s.s, on_read);
    RUN_UNTIL(f->loop,
              f->c.got_len == BIG && f->s.got_len == 16 && f->s.written > 0 && f->c.written > 0);
    pattern_check(f->c.got, BIG);
    assert_memory_equal(f->s.got, "GET / HTTP/1.1\r\n", 16);
    /* a clean close_notify: the other end reads end-of-file */
    gh_sock_shutdown_write(&f->s.s);
    RUN_UNTIL(f->loop, f->c.eof > 0);
    assert_int_equal(f->c.err, 0);
    free(data);
}

/* TLS records are larger than the bound: the rest waits inside OpenSSL, not in the kernel,
 * and consuming must still resume reading. */
static void test_tls_in_max(void **state)
{
    struct tls_fixture *f = *state;

    tls_pair(f, 1, ALPN_BOTH, "localhost");
    assert_int_equal(f->s.ready_status, GH_SOCK_OK);
    f->s.s.in_max = 1000;
    bounded_transfer(f->loop, &f->c, &f->s);
}

static void test_tls_server_files(void **state)
{
    struct tls_fixture *f = *state;
    SSL_CTX *ctx = (SSL_CTX *)1;
    char error[256] = "";

    assert_int_equal(
        gh_tls_server_new("/nonexistent/cert.pem", f->kit.key_path, 1, &ctx, error, sizeof error),
        GH_ERR_IO);
    assert_null(ctx);
    assert_non_null(strstr(error, "/nonexistent/cert.pem"));
    /* the certificate given as the key: no private key there */
    assert_int_equal(
        gh_tls_server_new(f->kit.cert_path, f->kit.cert_path, 1, &ctx, error, sizeof error),
        GH_ERR_IO);
    assert_non_null(strstr(error, "private key"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_socketpair_read_write),
        cmocka_unit_test(test_tcp_read_write_and_peer),
        cmocka_unit_test(test_tcp_backpressure),
        cmocka_unit_test(test_in_max_pauses_and_resumes),
        cmocka_unit_test(test_write_while_connecting),
        cmocka_unit_test(test_tcp_reset),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test_setup_teardown(test_tls_alpn_h2, tls_setup, tls_teardown),
        cmocka_unit_test_setup_teardown(test_tls_alpn_h1_when_h2_off, tls_setup, tls_teardown),
        cmocka_unit_test_setup_teardown(test_tls_ipv6_literal, tls_setup, tls_teardown),
        cmocka_unit_test_setup_teardown(test_tls_alpn_h1_offered_only, tls_setup, tls_teardown),
        cmocka_unit_test_setup_teardown(test_tls_no_alpn, tls_setup, tls_teardown),
        cmocka_unit_test_setup_teardown(test_tls_alpn_nothing_we_speak, tls_setup, tls_teardown),
        cmocka_unit_test_setup_teardown(test_tls_verify_failure, tls_setup, tls_teardown),
        cmocka_unit_test_setup_teardown(test_tls_data_both_ways, tls_setup, tls_teardown),
        cmocka_unit_test_setup_teardown(test_tls_in_max, tls_setup, tls_teardown),
        cmocka_unit_test_setup_teardown(test_tls_server_files, tls_setup, tls_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
