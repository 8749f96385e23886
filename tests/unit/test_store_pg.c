// SPDX-License-Identifier: Apache-2.0
/*
 * What only the PostgreSQL store has to prove, on a real server (tests/meta/with-postgres.sh
 * starts a throwaway cluster and sets GH_TEST_STORE; test_store and test_store_rules run there
 * too): nodes opening an empty database at once migrate it exactly once; a schema from a newer
 * gatehouse is refused; connection errors name the problem and never the password; the database's
 * own constraints answer with SQLite's 409 texts; two nodes writing at once never both take a path
 * nor a generation; a lost connection fails one call and the next one reconnects, never in the
 * middle of a transaction.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "store/backend.h"
#include "store/store.h"
#include "store/watch.h"
#include "storekit.h"

#define NODES 10

/* ---- helpers ---- */

static const char *env(const char *name)
{
    const char *value = getenv(name);
    if (value == NULL || value[0] == '\0')
        fail_msg("%s is not set: run this test through tests/meta/with-postgres.sh", name);
    return value;
}

/* A loopback port nobody listens on (bound, then closed). */
static int closed_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static struct gh_store *open_or_fail(const char *url)
{
    struct gh_store *s = NULL;
    char error[512] = "";
    if (gh_store_open(url, &s, error, sizeof error) != GH_OK)
        fail_msg("cannot open the store: %s", error);
    return s;
}

static void assert_sql(const struct gh_fixture *fx, const char *sql, const char *want)
{
    char *got = gh_fx_sql(fx, sql);
    if (got == NULL || strcmp(got, want) != 0)
        fail_msg("%s gives %s, not %s", sql, got != NULL ? got : "no row", want);
    free(got);
}

/* ---- migrations ---- */

struct opener {
    pthread_barrier_t *barrier;
    const char *url;
    struct gh_store *store;
    int rc;
    char error[512];
};

static void *open_at_once(void *arg)
{
    struct opener *o = arg;
    pthread_barrier_wait(o->barrier);
    o->rc = gh_store_open(o->url, &o->store, o->error, sizeof o->error);
    return NULL;
}

/* Ten nodes started at once on an empty database: all open it, and every migration is recorded
 * once, all in the same transaction (one applied_at: now() is the transaction's time). */
static void test_ten_nodes_migrate_once(void **state)
{
    struct gh_fixture fx;
    struct opener nodes[NODES];
    pthread_t threads[NODES];
    pthread_barrier_t barrier;
    (void)state;

    gh_fx_new_database(&fx);
    pthread_barrier_init(&barrier, NULL, NODES);
    for (int i = 0; i < NODES; i++) {
        nodes[i] = (struct opener){.barrier = &barrier, .url = fx.url};
        assert_int_equal(pthread_create(&threads[i], NULL, open_at_once, &nodes[i]), 0);
    }
    for (int i = 0; i < NODES; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&barrier);
    for (int i = 0; i < NODES; i++) {
        if (nodes[i].rc != GH_OK)
            fail_msg("node %d could not open the store: %s", i, nodes[i].error);
        assert_int_equal(gh_store_generation(nodes[i].store), 0);
    }
    char *max = gh_fx_sql(&fx, "SELECT MAX(version) FROM schema_migrations");
    assert_non_null(max);
    assert_true(atoi(max) >= 6); /* the six of SQLite's numbering, at least */
    assert_sql(&fx, "SELECT COUNT(*) FROM schema_migrations", max);
    assert_sql(&fx, "SELECT COUNT(DISTINCT version) FROM schema_migrations", max);
    assert_sql(&fx, "SELECT COUNT(DISTINCT applied_at) FROM schema_migrations", "1");
    assert_sql(&fx, "SELECT COUNT(*) FROM meta", "1");
    free(max);
    /* and they all write to the one schema */
    json_decref(gh_fx_must_create(nodes[3].store, GH_KIND_CLIENT, NULL,
                                  gh_fx_parse("{\"name\":\"after the start\"}")));
    for (int i = 0; i < NODES; i++)
        gh_store_close(nodes[i].store);
    gh_fx_close(&fx);
}

/* A database a newer gatehouse migrated is refused with a clear message, and left as it was. */
static void test_newer_schema_refused(void **state)
{
    struct gh_fixture *fx = *state;
    struct gh_store *s = (struct gh_store *)&s;
    char error[512] = "";

    free(gh_fx_sql(fx, "INSERT INTO schema_migrations (version, applied_at)"
                       " VALUES (999, '2030-01-01T00:00:00Z')"));
    gh_store_close(fx->s);
    fx->s = NULL;
    assert_int_not_equal(gh_store_open(fx->url, &s, error, sizeof error), GH_OK);
    assert_null(s);
    if (strstr(error, "schema version 999") == NULL || strstr(error, "newer") == NULL)
        fail_msg("a newer schema is refused with \"%s\"", error);
    assert_sql(fx, "SELECT MAX(version) FROM schema_migrations", "999");
}

/* ---- connecting ---- */

/* The error of opening `url`, which must fail as unreachable: it says `says`, names the server
 * as `where` and never holds `password` (not printed when it does: it may be the cluster's). */
static void assert_unreachable(const char *url, const char *password, const char *says,
                               const char *where)
{
    struct gh_store *s = NULL;
    char error[512] = "";
    assert_int_equal(gh_store_open(url, &s, error, sizeof error), GH_ERR_STORE_UNAVAILABLE);
    assert_null(s);
    if (strstr(error, password) != NULL)
        fail_msg("the connection error repeats the password");
    if (strstr(error, says) == NULL || strstr(error, where) == NULL)
        fail_msg("the connection error \"%s\" does not say \"%s\" and name %s", error, says, where);
}

/* A wrong password and a refused connection: the error names the problem and the server, and
 * holds neither the password given nor the cluster's own (PGPASSWORD). */
static void test_connection_errors_keep_the_password(void **state)
{
    const char *port = env("PGPORT"), *user = env("PGUSER"), *db = env("PGDATABASE");
    const char *real = env("PGPASSWORD");
    char url[512], where[64];
    int refused = closed_port();
    (void)state;

    snprintf(where, sizeof where, "127.0.0.1:%s/%s", port, db);
    snprintf(url, sizeof url, "postgres://%s:Wr0ngSecret@127.0.0.1:%s/%s", user, port, db);
    assert_unreachable(url, "Wr0ngSecret", "password authentication failed", where);
    snprintf(url, sizeof url, "postgresql://%s:Wr0ngSecret@127.0.0.1:%s/%s", user, port, db);
    assert_unreachable(url, "Wr0ngSecret", "password authentication failed", where);
    snprintf(url, sizeof url, "postgres:host=127.0.0.1 port=%s user=%s password=Wr0ngSecret", port,
             user);
    assert_unreachable(url, "Wr0ngSecret", "password authentication failed", where);

    snprintf(where, sizeof where, "127.0.0.1:%d/%s", refused, db);
    snprintf(url, sizeof url, "postgres://%s:Wr0ngSecret@127.0.0.1:%d/%s", user, refused, db);
    assert_unreachable(url, "Wr0ngSecret", "refused", where);
    /* the cluster's own password, from PGPASSWORD, on a port where nobody answers */
    snprintf(url, sizeof url, "postgres:host=127.0.0.1 port=%d", refused);
    assert_unreachable(url, real, "refused", where);
}

/* ---- constraints ---- */

/* Opens the same kind of store on SQLite (in memory) and on the fixture's PostgreSQL database. */
struct pair {
    struct gh_store *sqlite, *pg;
};

/* The same write on both stores: both refused with the same answer, which is a 409 naming
 * `field`. Takes `input`. */
static void same_refusal(const struct pair *p, enum gh_kind kind, const char *parent_sqlite,
                         const char *parent_pg, json_t *input, const char *field)
{
    struct gh_store_error a = {0}, b = {0};
    json_t *out = NULL;
    assert_int_not_equal(gh_store_create(p->sqlite, kind, parent_sqlite, input, NULL, &out, &a),
                         GH_OK);
    assert_int_not_equal(gh_store_create(p->pg, kind, parent_pg, input, NULL, &out, &b), GH_OK);
    json_decref(input);
    assert_int_equal(a.status, 409);
    assert_string_equal(a.field, field);
    assert_int_equal(b.status, a.status);
    assert_string_equal(b.code, a.code);
    assert_string_equal(b.field, a.field);
    assert_string_equal(b.message, a.message);
}

static json_t *create_both(const struct pair *p, enum gh_kind kind, const char *parent_sqlite,
                           const char *parent_pg, const char *input, json_t **pg)
{
    *pg = gh_fx_must_create(p->pg, kind, parent_pg, gh_fx_parse(input));
    return gh_fx_must_create(p->sqlite, kind, parent_sqlite, gh_fx_parse(input));
}

/* The store leaves uniqueness to the database: duplicates are refused by PostgreSQL's constraints
 * in the very words SQLite's give. */
static void test_unique_texts_match_sqlite(void **state)
{
    struct gh_fixture *fx = *state;
    struct pair p = {open_or_fail("sqlite::memory:"), fx->s};
    json_t *cli_pg, *col_pg;
    char profile[256];

    json_t *cli = create_both(&p, GH_KIND_CLIENT, NULL, NULL, "{\"name\":\"dup\"}", &cli_pg);
    same_refusal(&p, GH_KIND_CLIENT, NULL, NULL, gh_fx_parse("{\"name\":\"dup\"}"), "name");
    json_t *policy_pg;
    json_decref(create_both(&p, GH_KIND_POLICY, NULL, NULL, "{\"name\":\"dup\"}", &policy_pg));
    json_decref(policy_pg);
    same_refusal(&p, GH_KIND_POLICY, NULL, NULL, gh_fx_parse("{\"name\":\"dup\"}"), "name");
    json_t *col = create_both(&p, GH_KIND_COLLECTION, NULL, NULL,
                              "{\"name\":\"c\",\"version\":\"v1\",\"path\":\"/c\","
                              "\"upstream\":\"http://c.internal\"}",
                              &col_pg);
    same_refusal(&p, GH_KIND_COLLECTION, NULL, NULL,
                 gh_fx_parse("{\"name\":\"c\",\"version\":\"v1\",\"path\":\"/other\","
                             "\"upstream\":\"http://c.internal\"}"),
                 "name");
    const char *endpoint = "{\"method\":\"GET\",\"path\":\"/items\"}";
    json_t *end_pg;
    json_decref(create_both(&p, GH_KIND_ENDPOINT, gh_fx_str(col, "id"), gh_fx_str(col_pg, "id"),
                            endpoint, &end_pg));
    json_decref(end_pg);
    same_refusal(&p, GH_KIND_ENDPOINT, gh_fx_str(col, "id"), gh_fx_str(col_pg, "id"),
                 gh_fx_parse(endpoint), "path");
    /* a profile's name is unique per client: the two stores' clients have different ids */
    snprintf(profile, sizeof profile,
             "{\"client_id\":\"%s\",\"name\":\"p\",\"auth_type\":\"token\"}", gh_fx_str(cli, "id"));
    json_decref(gh_fx_must_create(p.sqlite, GH_KIND_PROFILE, NULL, gh_fx_parse(profile)));
    json_t *twice = gh_fx_parse(profile);
    snprintf(profile, sizeof profile,
             "{\"client_id\":\"%s\",\"name\":\"p\",\"auth_type\":\"token\"}",
             gh_fx_str(cli_pg, "id"));
    json_decref(gh_fx_must_create(p.pg, GH_KIND_PROFILE, NULL, gh_fx_parse(profile)));
    struct gh_store_error a = {0}, b = {0};
    json_t *out = NULL;
    assert_int_not_equal(gh_store_create(p.sqlite, GH_KIND_PROFILE, NULL, twice, NULL, &out, &a),
                         GH_OK);
    json_decref(twice);
    twice = gh_fx_parse(profile);
    assert_int_not_equal(gh_store_create(p.pg, GH_KIND_PROFILE, NULL, twice, NULL, &out, &b),
                         GH_OK);
    json_decref(twice);
    assert_int_equal(a.status, 409);
    assert_string_equal(a.field, "name");
    assert_string_equal(b.field, a.field);
    assert_string_equal(b.message, a.message);

    json_decref(cli);
    json_decref(cli_pg);
    json_decref(col);
    json_decref(col_pg);
    gh_store_close(p.sqlite);
}

/* Refused by both backends with the same answer, a 409 naming `field` ("" for none). */
static void same_backend_refusal(struct gh_store_backend *sqlite, struct gh_store_backend *pg,
                                 int remove, enum gh_kind kind, const char *doc, const char *field)
{
    struct gh_store_error a = {0}, b = {0};
    json_t *d = gh_fx_parse(doc);
    const char *id = gh_fx_str(d, "id");
    int ra =
        remove ? sqlite->remove(sqlite->db, kind, id, &a) : sqlite->insert(sqlite->db, kind, d, &a);
    int rb = remove ? pg->remove(pg->db, kind, id, &b) : pg->insert(pg->db, kind, d, &b);
    json_decref(d);
    if (ra == GH_OK || rb == GH_OK || a.status != 409 || b.status != 409)
        fail_msg("%s: SQLite answers %d %s, PostgreSQL %d %s", doc, a.status, a.message, b.status,
                 b.message);
    assert_string_equal(a.field, field);
    assert_string_equal(b.field, a.field);
    assert_string_equal(b.message, a.message);
}

static void insert_both(struct gh_store_backend *sqlite, struct gh_store_backend *pg,
                        enum gh_kind kind, const char *doc)
{
    struct gh_store_error err = {0};
    json_t *d = gh_fx_parse(doc);
    if (sqlite->insert(sqlite->db, kind, d, &err) != GH_OK)
        gh_fx_fail_store("sqlite insert", &err);
    if (pg->insert(pg->db, kind, d, &err) != GH_OK)
        gh_fx_fail_store("pg insert", &err);
    json_decref(d);
}

/* Behind store.c's own checks, the databases themselves refuse a duplicate id or key hash and a
 * broken reference (ON DELETE RESTRICT, a parent that is not there), with the same answers. */
static void test_database_constraints_match_sqlite(void **state)
{
    struct gh_fixture *fx = *state;
    struct gh_store_backend sqlite, pg;
    char error[512] = "";
    (void)state;

    if (gh_sqlite_backend_open(":memory:", &sqlite, error, sizeof error) != GH_OK ||
        gh_pg_backend_open(fx->url + strlen("postgres:"), &pg, error, sizeof error) != GH_OK)
        fail_msg("cannot open the backends: %s", error);
    insert_both(&sqlite, &pg, GH_KIND_CLIENT, "{\"id\":\"cli_1\",\"name\":\"c\"}");
    same_backend_refusal(&sqlite, &pg, 0, GH_KIND_CLIENT, "{\"id\":\"cli_1\",\"name\":\"d\"}",
                         "id");
    insert_both(&sqlite, &pg, GH_KIND_PROFILE,
                "{\"id\":\"prf_1\",\"client_id\":\"cli_1\",\"name\":\"p\"}");
    insert_both(&sqlite, &pg, GH_KIND_KEY,
                "{\"id\":\"key_1\",\"profile_id\":\"prf_1\",\"hash\":\"h\"}");
    same_backend_refusal(&sqlite, &pg, 0, GH_KIND_KEY,
                         "{\"id\":\"key_2\",\"profile_id\":\"prf_1\",\"hash\":\"h\"}", "hash");
    same_backend_refusal(&sqlite, &pg, 0, GH_KIND_ENDPOINT,
                         "{\"id\":\"end_1\",\"collection_id\":\"col_none\",\"method\":\"GET\","
                         "\"path\":\"/x\"}",
                         "");
    same_backend_refusal(&sqlite, &pg, 1, GH_KIND_CLIENT, "{\"id\":\"cli_1\"}", "");
    insert_both(&sqlite, &pg, GH_KIND_COLLECTION,
                "{\"id\":\"col_1\",\"name\":\"c\",\"version\":\"v\",\"path\":\"/c\"}");
    same_backend_refusal(&sqlite, &pg, 0, GH_KIND_COLLECTION,
                         "{\"id\":\"col_2\",\"name\":\"d\",\"version\":\"v\",\"path\":\"/c\"}",
                         "path");
    insert_both(&sqlite, &pg, GH_KIND_PROFILE,
                "{\"id\":\"prf_2\",\"client_id\":\"cli_1\",\"name\":\"q\","
                "\"collection_ids\":[\"col_1\"]}");
    same_backend_refusal(&sqlite, &pg, 1, GH_KIND_COLLECTION, "{\"id\":\"col_1\"}", "");
    sqlite.close(sqlite.db);
    pg.close(pg.db);
}

/* ---- two nodes at once ---- */

#define ROUNDS 20

struct writer {
    pthread_barrier_t *barrier;
    struct gh_store *store;
    int node;
    int rc[ROUNDS];
    struct gh_store_error err[ROUNDS];
    uint64_t generation[ROUNDS];
};

/* Each round, after the barrier: a collection on the round's path. No cmocka assertion here
 * (another thread's longjmp); the test reads the results. */
static void *create_collections(void *arg)
{
    struct writer *w = arg;
    for (int r = 0; r < ROUNDS; r++) {
        json_t *out = NULL;
        char name[32], path[32];
        snprintf(name, sizeof name, "node %d round %d", w->node, r);
        snprintf(path, sizeof path, "/race%d", r);
        json_t *doc =
            json_pack("{s:s, s:s, s:s}", "name", name, "path", path, "upstream", "http://race.x");
        pthread_barrier_wait(w->barrier);
        w->rc[r] = gh_store_create(w->store, GH_KIND_COLLECTION, NULL, doc, NULL, &out, &w->err[r]);
        w->generation[r] = gh_store_generation(w->store);
        json_decref(doc);
        json_decref(out);
    }
    return NULL;
}

/* Two nodes create a collection on the same path at the same moment, twenty times: each time
 * exactly one gets it and the other a 409 naming the path; the twenty changes took twenty
 * different generations, which a third node then reads. */
static void test_two_nodes_same_path(void **state)
{
    struct gh_fixture *fx = *state;
    pthread_barrier_t barrier;
    struct writer w[2];
    pthread_t threads[2];
    int taken[ROUNDS + 1] = {0};

    pthread_barrier_init(&barrier, NULL, 2);
    for (int i = 0; i < 2; i++) {
        w[i] = (struct writer){
            .barrier = &barrier, .store = i == 0 ? fx->s : open_or_fail(fx->url), .node = i};
        assert_int_equal(pthread_create(&threads[i], NULL, create_collections, &w[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&barrier);
    gh_store_close(w[1].store);

    for (int r = 0; r < ROUNDS; r++) {
        int winner = w[0].rc[r] == GH_OK ? 0 : 1, loser = 1 - winner;
        if (w[winner].rc[r] != GH_OK)
            gh_fx_fail_store("both creates", &w[winner].err[r]);
        if (w[loser].rc[r] == GH_OK)
            fail_msg("round %d: both nodes created a collection on /race%d", r, r);
        assert_int_equal(w[loser].err[r].status, 409);
        assert_string_equal(w[loser].err[r].field, "path");
        uint64_t g = w[winner].generation[r];
        assert_true(g >= 1 && g <= ROUNDS);
        if (taken[g]++)
            fail_msg("round %d: generation %llu was taken twice", r, (unsigned long long)g);
    }
    struct gh_store *third = open_or_fail(fx->url);
    assert_int_equal(gh_store_generation(third), ROUNDS);
    gh_store_close(third);
}

/* ---- reading the whole configuration ---- */

static void assert_loaded(struct gh_store *s, uint64_t generation, size_t clients)
{
    struct gh_store_error err = {0};
    json_t *doc = NULL;
    if (gh_store_load_all(s, &doc, &err) != GH_OK)
        gh_fx_fail_store("load_all", &err);
    assert_int_equal(json_integer_value(json_object_get(doc, "generation")), generation);
    assert_int_equal(json_array_size(json_object_get(doc, "clients")), clients);
    json_decref(doc);
    /* the node's own count follows what it read, so it never lags behind another node's writes */
    assert_int_equal(gh_store_generation(s), generation);
}

/* Another node's store, which wrote nothing itself, reads each committed change with the
 * generation that change made: the snapshot and its number come from one transaction. */
static void test_load_all_carries_the_generation(void **state)
{
    struct gh_fixture *fx = *state;
    struct gh_store *other = open_or_fail(fx->url);

    assert_loaded(other, 0, 0);
    json_decref(gh_fx_must_create(fx->s, GH_KIND_CLIENT, NULL, gh_fx_parse("{\"name\":\"a\"}")));
    assert_loaded(other, 1, 1);
    json_decref(gh_fx_must_create(fx->s, GH_KIND_CLIENT, NULL, gh_fx_parse("{\"name\":\"b\"}")));
    assert_loaded(other, 2, 2);
    gh_store_close(other);
}

/* ---- the watcher ---- */

/* What a node does with the watcher: it publishes what it reloads (here: the generation alone). */
struct node {
    struct gh_store *store;
    pthread_mutex_t lock;
    uint64_t published;
    int has;
    int reloads[3]; /* by enum gh_store_watch_cause */
};

static int node_published(void *ctx, uint64_t *generation)
{
    struct node *n = ctx;
    pthread_mutex_lock(&n->lock);
    int has = n->has;
    *generation = n->published;
    pthread_mutex_unlock(&n->lock);
    return has;
}

static int node_reload(void *ctx, enum gh_store_watch_cause cause)
{
    struct node *n = ctx;
    struct gh_store_error err = {0};
    json_t *doc = NULL;
    int rc = gh_store_load_all(n->store, &doc, &err);
    if (rc == GH_OK) {
        pthread_mutex_lock(&n->lock);
        n->published = (uint64_t)json_integer_value(json_object_get(doc, "generation"));
        n->has = 1;
        n->reloads[cause]++;
        pthread_mutex_unlock(&n->lock);
    }
    json_decref(doc);
    return rc;
}

static int64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits (at most 5 s) until the node publishes `generation`; the milliseconds it took. */
static int64_t wait_published(struct node *n, uint64_t generation)
{
    int64_t start = ms_now();
    uint64_t got = 0;
    while (!node_published(n, &got) || got < generation) {
        if (ms_now() - start > 5000)
            fail_msg("the node publishes generation %llu, not %llu, after 5 s",
                     (unsigned long long)got, (unsigned long long)generation);
        usleep(1000);
    }
    return ms_now() - start;
}

/* Another node's write reaches this node's watcher by NOTIFY, far inside the poll period; when
 * the server ends the watcher's session, it reconnects by itself and catches up with what was
 * written while it was away. */
static void test_watcher_hears_and_reconnects(void **state)
{
    struct gh_fixture *fx = *state;
    struct node n = {.store = open_or_fail(fx->url)};
    struct gh_store_watch_hooks hooks = {&n, node_published, node_reload};
    struct gh_store_watch *w = NULL;

    pthread_mutex_init(&n.lock, NULL);
    /* a poll period far beyond the test: only a notification or a reconnect can move the node */
    assert_int_equal(gh_store_watch_start(n.store, 3600000, 1, &hooks, &w), GH_OK);
    assert_non_null(w);
    wait_published(&n, 0); /* the first connection's catch-up */
    json_decref(gh_fx_must_create(fx->s, GH_KIND_CLIENT, NULL, gh_fx_parse("{\"name\":\"a\"}")));
    int64_t ms = wait_published(&n, 1);
    printf("a write on another node reached the watcher in %lld ms\n", (long long)ms);
    assert_true(n.reloads[GH_STORE_WATCH_NOTIFY] >= 1);
    assert_true(gh_store_watch_reachable(w));

    char *ended =
        gh_fx_sql(fx, "SELECT COUNT(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
                      " WHERE datname = current_database() AND query LIKE 'LISTEN%'");
    assert_non_null(ended);
    assert_string_equal(ended, "1");
    free(ended);
    json_decref(gh_fx_must_create(fx->s, GH_KIND_CLIENT, NULL, gh_fx_parse("{\"name\":\"b\"}")));
    ms = wait_published(&n, 2);
    printf("after its session was ended, the watcher caught up in %lld ms\n", (long long)ms);
    int64_t start = ms_now();
    while (gh_store_watch_reconnects(w) < 1 && ms_now() - start < 5000)
        usleep(1000);
    assert_int_equal(gh_store_watch_reconnects(w), 1);
    assert_true(gh_store_watch_reachable(w));
    gh_store_watch_stop(w);
    gh_store_close(n.store);
    pthread_mutex_destroy(&n.lock);
}

/* ---- a lost connection ---- */

/* Ends the server sessions of the stores (application_name gatehouse) on the fixture's database,
 * waiting until they are gone. */
static void kill_sessions(const struct gh_fixture *fx)
{
    char *n =
        gh_fx_sql(fx, "SELECT COUNT(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
                      " WHERE datname = current_database() AND application_name = 'gatehouse'");
    assert_non_null(n);
    assert_string_equal(n, "1");
    free(n);
}

/* The server ends the store's session: the next call fails (503 store_unavailable, a read as a
 * write) without a crash or a wait, and the one after reconnects; nothing half done is left
 * behind. */
static void test_lost_connection_comes_back(void **state)
{
    struct gh_fixture *fx = *state;
    struct gh_store_error err = {0};
    json_t *out = NULL;

    json_t *client =
        gh_fx_must_create(fx->s, GH_KIND_CLIENT, NULL, gh_fx_parse("{\"name\":\"c\"}"));
    kill_sessions(fx);
    assert_int_equal(gh_store_get(fx->s, GH_KIND_CLIENT, gh_fx_str(client, "id"), &out, &err),
                     GH_ERR_STORE_UNAVAILABLE);
    assert_int_equal(err.status, 503);
    assert_string_equal(err.code, "store_unavailable");
    assert_non_null(strstr(err.message, "cannot be reached; nothing was changed"));
    assert_int_equal(gh_store_get(fx->s, GH_KIND_CLIENT, gh_fx_str(client, "id"), &out, &err),
                     GH_OK);
    json_decref(out);

    kill_sessions(fx);
    json_t *input = gh_fx_parse("{\"name\":\"d\"}");
    assert_int_equal(gh_store_create(fx->s, GH_KIND_CLIENT, NULL, input, NULL, &out, &err),
                     GH_ERR_STORE_UNAVAILABLE);
    assert_null(out);
    assert_int_equal(gh_store_generation(fx->s), 1);
    json_decref(gh_fx_must_create(fx->s, GH_KIND_CLIENT, NULL, input));
    assert_sql(fx, "SELECT COUNT(*) FROM clients", "2");
    assert_sql(fx, "SELECT value FROM meta", "2");
    assert_int_equal(gh_store_ping(fx->s), 1);
    json_decref(client);
}

static int insert_client(struct gh_store_backend *b, const char *id)
{
    struct gh_store_error err = {0};
    json_t *doc = json_pack("{s:s, s:s}", "id", id, "name", id);
    int rc = b->insert(b->db, GH_KIND_CLIENT, doc, &err);
    json_decref(doc);
    return rc;
}

/* A connection lost inside a transaction is not reset until the transaction is rolled back: the
 * rest of it would run outside any transaction and commit half a change. Afterwards the next call
 * reconnects, and nothing of the transaction is there. */
static void test_lost_connection_never_splits_a_transaction(void **state)
{
    struct gh_fixture *fx = *state;
    struct gh_store_backend b;
    struct gh_store_error err = {0};
    char error[512] = "";
    json_t *doc = NULL;

    gh_store_close(fx->s); /* the backend's session is then the only one to end */
    fx->s = NULL;
    if (gh_pg_backend_open(fx->url + strlen("postgres:"), &b, error, sizeof error) != GH_OK)
        fail_msg("cannot open the backend: %s", error);
    assert_int_equal(b.begin(b.db, &err), GH_OK);
    assert_int_equal(insert_client(&b, "cli_before"), GH_OK);
    kill_sessions(fx);
    assert_int_equal(insert_client(&b, "cli_during"), GH_ERR_STORE_UNAVAILABLE);
    assert_int_equal(insert_client(&b, "cli_after"), GH_ERR_STORE_UNAVAILABLE);
    assert_int_not_equal(b.commit(b.db, &err), GH_OK);
    b.rollback(b.db);
    assert_int_equal(b.fetch(b.db, GH_KIND_CLIENT, "cli_before", &doc), GH_OK);
    assert_null(doc);
    assert_int_equal(b.ping(b.db), 1);
    b.close(b.db);
    assert_sql(fx, "SELECT COUNT(*) FROM clients", "0");
}

static int setup(void **state)
{
    struct gh_fixture *fx = calloc(1, sizeof *fx);
    if (fx == NULL)
        return -1;
    gh_fx_open(fx);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    gh_fx_close(*state);
    free(*state);
    return 0;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ten_nodes_migrate_once),
        T(test_newer_schema_refused),
        cmocka_unit_test(test_connection_errors_keep_the_password),
        T(test_unique_texts_match_sqlite),
        T(test_database_constraints_match_sqlite),
        T(test_two_nodes_same_path),
        T(test_load_all_carries_the_generation),
        T(test_watcher_hears_and_reconnects),
        T(test_lost_connection_comes_back),
        T(test_lost_connection_never_splits_a_transaction),
    };
    if (!gh_fx_postgres()) {
        fprintf(stderr, "test_store_pg: FAIL: GH_TEST_STORE does not name PostgreSQL; run it "
                        "through tests/meta/with-postgres.sh (ctest does), which starts a "
                        "throwaway cluster\n");
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
