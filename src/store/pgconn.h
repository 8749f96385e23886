// SPDX-License-Identifier: Apache-2.0
/*
 * What the PostgreSQL backend (pg.c) and the watcher (watch.c) share about connecting: both open
 * connections of their own with the same settings, name the server the same way in logs, and
 * scrub the password from libpq's messages the same way. Internal to src/store.
 */
#ifndef GH_STORE_PGCONN_H
#define GH_STORE_PGCONN_H

#include <libpq-fe.h>
#include <stddef.h>

/* The LISTEN/NOTIFY channel of configuration changes; the payload is the new generation. */
#define GH_PG_CHANNEL "gatehouse_config"

/* Connects with `conninfo` and the settings gatehouse needs (connect_timeout `connect_timeout`
 * seconds unless PGCONNECT_TIMEOUT says otherwise, application_name, statement and idle timeouts,
 * TCP keepalives, UTF-8); the user's string and PG* variables win over what are only defaults.
 * The caller owns the connection (PQfinish), whatever its status; NULL only when out of memory. */
PGconn *gh_pg_connect(const char *conninfo, const char *connect_timeout);

/* "postgres://host:port/dbname" of `conn`, up or not, into `out`: never a user or a password. */
void gh_pg_describe(PGconn *conn, char *out, size_t cap);

/* "cannot connect to PostgreSQL at WHERE: REASON" from libpq's message on one line, with any
 * password (the string's, PGPASSWORD's) scrubbed from it; the string itself is never quoted. */
void gh_pg_connection_error(PGconn *conn, const char *conninfo, const char *where, char *error,
                            size_t cap);

/* Whether libpq can parse `conninfo`: see backend.h (gh_pg_conninfo_check). */
int gh_pg_conninfo_check(const char *conninfo, char *error, size_t cap);

/* libpq's messages end with a newline and go on over tab-indented lines: `text` on one line, in
 * place. */
void gh_pg_one_line(char *text);

#endif
