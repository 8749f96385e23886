// SPDX-License-Identifier: Apache-2.0
/*
 * The subcommands of the `gatehouse` binary (SPEC §7). Each takes the arguments after its own name
 * and returns the process exit status: 0 success, 1 an error answer or an invalid token, 2 bad
 * usage or an I/O error.
 */
#ifndef GH_CLI_CLI_H
#define GH_CLI_CLI_H

#include <stdio.h>

enum { GH_EXIT_OK = 0, GH_EXIT_FAIL = 1, GH_EXIT_USAGE = 2 };

int gh_cli_token(int argc, char **argv);
int gh_cli_serve(int argc, char **argv);
void gh_cli_serve_help(FILE *out);
void gh_cli_token_help(FILE *out);

/* Reads at most `max` bytes of a file ("-" is standard input) into a new NUL-terminated buffer.
 * Returns 0, -1 on an I/O error (errno set) or -2 when the file is larger than `max`. */
int gh_cli_read_file(const char *path, size_t max, char **data, size_t *len);

#endif
