// SPDX-License-Identifier: Apache-2.0
/*
 * Entry point of the one `gatehouse` binary: dispatches to a subcommand and prints help. Each
 * subcommand lives in its own cmd_*.c file and uses the public headers of the core only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cmd_admin.h"

#ifndef GH_VERSION
#define GH_VERSION "0.0.0"
#endif

static void usage(FILE *out)
{
    fputs("gatehouse - an API gateway that admits requests by access profile and OpenID Connect\n"
          "\n"
          "usage: gatehouse <command> [options]\n"
          "\n"
          "commands:\n"
          "  serve                 run the gateway, the admin API and the IdP key manager\n"
          "  token verify          check a JWT against a key, a JWK Set or a live IdP's keys\n"
          "  token decode          print a JWT's header and payload WITHOUT verifying it\n"
          "  collections           list|get|create|update|delete API collections\n"
          "  endpoints             list|get|create|update|delete endpoints of a collection\n"
          "  clients               list|get|create|update|delete API clients\n"
          "  profiles              list|get|create|update|delete access profiles\n"
          "  keys                  list|create|delete the keys of an access profile\n"
          "  policies              list|get|create|update|delete rate-limit and quota policies\n"
          "  providers             list|get|refresh the identity providers of oidc profiles\n"
          "  explain               show how the gateway would treat a request\n"
          "  config                export|apply the whole configuration as JSON\n"
          "  audit                 the audit log of admin changes, newest first\n"
          "  version               print the version\n"
          "  help [COMMAND]        print help for a command\n"
          "\n"
          "The admin commands talk to a running server's admin API (--admin-url); they take\n"
          "--json for scripts and --dry-run to print a request instead of sending it.\n",
          out);
}

static int cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);
        return GH_EXIT_OK;
    }
    if (strcmp(argv[1], "token") == 0) {
        gh_cli_token_help(stdout);
        return GH_EXIT_OK;
    }
    if (gh_cli_admin_help(argv[1], stdout) == 0)
        return GH_EXIT_OK;
    if (strcmp(argv[1], "serve") == 0) {
        gh_cli_serve_help(stdout);
        return GH_EXIT_OK;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return GH_EXIT_OK;
    }
    fprintf(stderr, "gatehouse help: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return GH_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return GH_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "token") == 0)
        return gh_cli_token(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0)
        return gh_cli_serve(argc - 1, argv + 1);
    if (gh_cli_admin_is_command(cmd))
        return gh_cli_admin_main(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        if (argc > 2 && gh_cli_is_help(argv[2])) {
            usage(stdout);
            return GH_EXIT_OK;
        }
        printf("gatehouse %s\n", GH_VERSION);
        return GH_EXIT_OK;
    }
    if (strcmp(cmd, "help") == 0 || gh_cli_is_help(cmd))
        return cmd_help(argc - 1, argv + 1);
    fprintf(stderr, "gatehouse: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return GH_EXIT_USAGE;
}
