// SPDX-License-Identifier: Apache-2.0
/*
 * The subcommands of the `gatehouse` binary (SPEC §7). Each takes the arguments after its own name
 * and returns the process exit status: 0 success, 1 an error answer or an invalid token, 2 bad
 * usage or an I/O error.
 */
#ifndef GH_CLI_CLI_H
#define GH_CLI_CLI_H

#include <stddef.h>
#include <stdio.h>

enum { GH_EXIT_OK = 0, GH_EXIT_FAIL = 1, GH_EXIT_USAGE = 2 };

int gh_cli_token(int argc, char **argv);
int gh_cli_serve(int argc, char **argv);
void gh_cli_serve_help(FILE *out);
void gh_cli_token_help(FILE *out);

/*
 * One flag of a command, in the table that drives both its parser and its help, so that the two
 * cannot drift. `metavar` NULL makes a switch (no value; its environment twin turns it on with
 * "1"). `fallback` is the value when neither the flag nor `env` is given, shown in the help as
 * the default; NULL for none. `id` tells the command's parser what to do with the value.
 */
struct gh_cli_flag {
    const char *name, *env, *metavar, *fallback, *help;
    int id;
};

/* 1 when `arg` asks for help: --help or -h. */
int gh_cli_is_help(const char *arg);

/* Matches argv[*i] as "--name VALUE", "--name=VALUE" or a switch "--name" against the table.
 * Returns 1 with *flag and *value set ("1" for a switch; *i moved past a separate value), 0 when
 * no flag matches, -1 when the flag's value is missing (*flag set). */
int gh_cli_flag_match(const struct gh_cli_flag *flags, size_t n, int argc, char **argv, int *i,
                      const struct gh_cli_flag **flag, const char **value);

/* The value of the flag's environment twin (static storage of the environment): NULL when unset
 * or empty, and for a switch "1" only when it is "1". */
const char *gh_cli_flag_env(const struct gh_cli_flag *flag);

/* One aligned line per flag: the flag, its metavar, the description, its env twin and default. */
void gh_cli_flags_help(const struct gh_cli_flag *flags, size_t n, FILE *out);

/* The flag tables of `serve` and `token verify`, for tests that check them against the help. */
const struct gh_cli_flag *gh_cli_serve_flags(size_t *n);
const struct gh_cli_flag *gh_cli_token_verify_flags(size_t *n);

/* Where `gatehouse serve` keeps its store and admin-token when nothing says otherwise, relative
 * to the working directory (git ignores it in a checkout). */
#define GH_CLI_DATA_DIR_DEFAULT "./data"

/*
 * The data directory, by one rule for the server and the admin commands: `data_dir` (--data-dir,
 * else GATEHOUSE_DATA_DIR) when given, else the directory of an SQLite store `db` (--db, else
 * GATEHOUSE_DB), else GH_CLI_DATA_DIR_DEFAULT. Either may be NULL or empty. 0, or -1 when it
 * does not fit `cap`.
 */
int gh_cli_data_dir(const char *data_dir, const char *db, char *out, size_t cap);

/* Reads at most `max` bytes of a file ("-" is standard input) into a new NUL-terminated buffer.
 * Returns 0, -1 on an I/O error (errno set) or -2 when the file is larger than `max`. */
int gh_cli_read_file(const char *path, size_t max, char **data, size_t *len);

#endif
