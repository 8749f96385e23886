// SPDX-License-Identifier: Apache-2.0
/*
 * Connecting to PostgreSQL, for the backend (pg.c) and the watcher (watch.c) alike: the settings
 * every gatehouse session has, the server named as logs may name it, and libpq's messages made
 * fit for a log (one line, no password). Split from pg.c so that both open their connections the
 * same way without the watcher reaching into the backend.
 */
#include "store/pgconn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

/* How long a statement may run, and a transaction stay idle, before the server ends it: no call
 * waits forever on a lock another node holds, nor does a stuck node hold the write lock. */
#define SESSION_OPTIONS "-c statement_timeout=30000 -c idle_in_transaction_session_timeout=60000"

/* libpq's messages end with a newline and continue on tab-indented lines: one line for a log. */
void gh_pg_one_line(char *text)
{
    size_t o = 0;
    for (const char *c = text; *c != '\0'; c++) {
        char ch = *c == '\n' || *c == '\t' ? ' ' : *c;
        if (ch != ' ' || (o > 0 && text[o - 1] != ' '))
            text[o++] = ch;
    }
    while (o > 0 && text[o - 1] == ' ')
        o--;
    text[o] = '\0';
}

/* Each of `secrets` replaced by "***" in `text`, in place. */
static void redact(char *text, const char *const *secrets, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = secrets[i] != NULL ? strlen(secrets[i]) : 0;
        char *at = text;
        if (len == 0)
            continue;
        while ((at = strstr(at, secrets[i])) != NULL) {
            size_t keep = len < 3 ? len : 3; /* never longer than what it replaces */
            memcpy(at, "***", keep);
            memmove(at + keep, at + len, strlen(at + len) + 1);
            at += keep;
        }
    }
}

/*
 * Why the connection failed, from libpq's message: its connection errors name the host, port,
 * user and the server's reason, never the password, but a password is scrubbed from it all the
 * same (a mistyped string can put one where a host or port belongs) and the string itself is
 * never quoted.
 */
void gh_pg_connection_error(PGconn *conn, const char *conninfo, const char *where, char *error,
                            size_t cap)
{
    char *given = NULL, *text = strdup(PQerrorMessage(conn));
    PQconninfoOption *options = PQconninfoParse(conninfo, NULL);

    for (PQconninfoOption *o = options; o != NULL && o->keyword != NULL; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val != NULL)
            given = o->val;
    const char *secrets[] = {given, PQpass(conn), getenv("PGPASSWORD")};
    if (text != NULL) { /* the whole message, before it is cut to the caller's buffer */
        redact(text, secrets, sizeof secrets / sizeof secrets[0]);
        gh_pg_one_line(text);
    }
    gh_error_format(error, cap, "cannot connect to PostgreSQL at %s: %s", where,
                    text != NULL ? text : "out of memory");
    free(text);
    PQconninfoFree(options);
}

int gh_pg_conninfo_check(const char *conninfo, char *error, size_t cap)
{
    char *why = NULL;
    PQconninfoOption *options = PQconninfoParse(conninfo, &why);
    int rc = GH_OK;

    /* libpq's reason quotes the faulty part, which may be the password: never shown */
    PQfreemem(why);
    if (options == NULL) {
        gh_error_format(error, cap,
                        "the PostgreSQL connection string is not valid (not repeated here: it "
                        "may hold a password); use postgres://USER:PASSWORD@HOST:PORT/DBNAME or "
                        "postgres:host=HOST port=PORT dbname=DBNAME");
        return GH_ERR_INVALID_ARG;
    }
    for (PQconninfoOption *o = options; o->keyword != NULL; o++) {
        if (strcmp(o->keyword, "port") == 0 && o->val != NULL &&
            strspn(o->val, "0123456789,") != strlen(o->val)) {
            /* "postgres://user:secret/db" (no @) makes "secret" the port: not repeated either */
            gh_error_format(error, cap,
                            "the PostgreSQL port is not a number (not repeated here: "
                            "a mistyped string can put a password there)");
            rc = GH_ERR_INVALID_ARG;
        }
    }
    PQconninfoFree(options);
    return rc;
}

/* "postgres://host:port/dbname" of the connection, whether it is up or not; a Unix socket's
 * directory goes in libpq's own URL form, "postgres:///dbname?host=/dir&port=5432". */
void gh_pg_describe(PGconn *conn, char *out, size_t cap)
{
    const char *host = PQhost(conn), *port = PQport(conn), *db = PQdb(conn);
    host = host != NULL && host[0] != '\0' ? host : "localhost";
    port = port != NULL ? port : "";
    db = db != NULL ? db : "";
    if (host[0] == '/')
        snprintf(out, cap, "postgres:///%s?host=%s%s%s", db, host, port[0] ? "&port=" : "", port);
    else
        snprintf(out, cap, "postgres://%s%s%s/%s", host, port[0] ? ":" : "", port, db);
}

PGconn *gh_pg_connect(const char *conninfo, const char *connect_timeout)
{
    const char *keywords[12], *values[12];
    int n = 0;

    /* before dbname (the expanded string): the user's values override them */
    if (getenv("PGCONNECT_TIMEOUT") == NULL)
        keywords[n] = "connect_timeout", values[n++] = connect_timeout;
    if (getenv("PGAPPNAME") == NULL)
        keywords[n] = "application_name", values[n++] = "gatehouse";
    if (getenv("PGOPTIONS") == NULL)
        keywords[n] = "options", values[n++] = SESSION_OPTIONS;
    /* a server gone without a word is noticed within about half a minute, not hours */
    keywords[n] = "keepalives_idle", values[n++] = "10";
    keywords[n] = "keepalives_interval", values[n++] = "5";
    keywords[n] = "keepalives_count", values[n++] = "3";
    keywords[n] = "tcp_user_timeout", values[n++] = "30000";
    keywords[n] = "dbname", values[n++] = conninfo;
    /* after it: the documents are UTF-8, whatever the environment says */
    keywords[n] = "client_encoding", values[n++] = "UTF8";
    keywords[n] = NULL, values[n] = NULL;
    return PQconnectdbParams(keywords, values, 1);
}
