// SPDX-License-Identifier: Apache-2.0
/*
 * `gatehouse help <admin command>`: one text per command, written for an operator at a terminal,
 * plus the options and exit statuses every admin command shares. Kept apart from the route and
 * flag tables of cmd_admin.c so those stay readable as tables; test_cli_admin checks that each
 * text names its flags.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cmd_admin.h"

static const char common_help[] =
    "\n"
    "options of every admin command:\n"
    "  --admin-url URL   the admin API (env GATEHOUSE_ADMIN_URL; default http://127.0.0.1:9901)\n"
    "  --data-dir DIR    the server's data directory, which holds the file admin-token\n"
    "                    (env GATEHOUSE_DATA_DIR; default ./data)\n"
    "  --db DB           the server's SQLite store, whose directory is the data directory when\n"
    "                    --data-dir is not given (env GATEHOUSE_DB)\n"
    "  --json            print the API's JSON answer instead of a table or key: value view\n"
    "  --dry-run         print the request (method, URL, JSON body) instead of sending it, and\n"
    "                    exit 0; the admin token is never printed, the body is (a jwt key too)\n"
    "  --data JSON       (create, update) a JSON object of fields; the flags override its members\n"
    "  --limit N         (list) stop after N objects; by default every page is fetched\n"
    "\n"
    "The admin token comes from GATEHOUSE_ADMIN_TOKEN, else from the file admin-token in the\n"
    "data directory, found as `gatehouse serve` finds it (the server writes it there on its\n"
    "first start).\n"
    "Booleans are true or false; numbers are whole numbers; lists are comma lists ('' is empty).\n"
    "Exit status: 0 success; 1 the API answered an error, printed as\n"
    "  gatehouse: STATUS ERROR: MESSAGE (field: FIELD)\n"
    "2 bad usage, or the admin API cannot be reached.\n";

static const struct {
    const char *command;
    const char *text;
} helps[] = {
    {"collections",
     "usage: gatehouse collections list\n"
     "       gatehouse collections get ID\n"
     "       gatehouse collections create --name NAME --path /PREFIX --upstream URL [FIELDS]\n"
     "       gatehouse collections update ID FIELDS\n"
     "       gatehouse collections delete ID\n"
     "\n"
     "A collection is a public path prefix proxied to one upstream.\n"
     "  --name NAME                       unique name\n"
     "  --version VERSION                 default v1\n"
     "  --path /PREFIX                    public URL prefix, e.g. /orders/v1\n"
     "  --upstream URL                    http:// or https:// base URL\n"
     "  --timeout-ms N                    upstream timeout (default 30000)\n"
     "  --active true|false               default true\n"
     "  --forward-authorization true|false  send Authorization upstream (default true)\n"},
    {"endpoints",
     "usage: gatehouse endpoints list COLLECTION_ID\n"
     "       gatehouse endpoints get ID\n"
     "       gatehouse endpoints create COLLECTION_ID --method METHOD --path /PATH [FIELDS]\n"
     "       gatehouse endpoints update ID FIELDS\n"
     "       gatehouse endpoints delete ID\n"
     "\n"
     "An endpoint is a method and path inside a collection.\n"
     "  --method METHOD       GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or ANY\n"
     "  --path /PATH          relative to the collection: /items/:id, a final /* for any rest\n"
     "  --name NAME           a name for people\n"
     "  --timeout-ms N        default: the collection's\n"
     "  --active true|false   default true\n"},
    {"clients",
     "usage: gatehouse clients list\n"
     "       gatehouse clients get ID\n"
     "       gatehouse clients create --name NAME [--description TEXT] [--active true|false]\n"
     "       gatehouse clients update ID FIELDS\n"
     "       gatehouse clients delete ID\n"
     "\n"
     "A client is an API consumer (a company, a team).\n"
     "  --name NAME           unique name\n"
     "  --description TEXT    free text\n"
     "  --active true|false   default true\n"},
    {"profiles",
     "usage: gatehouse profiles list\n"
     "       gatehouse profiles get ID\n"
     "       gatehouse profiles create --client ID --name NAME --auth-type oidc|jwt|token "
     "[FIELDS]\n"
     "       gatehouse profiles update ID FIELDS\n"
     "       gatehouse profiles delete ID\n"
     "\n"
     "An access profile grants collections to a client. `create` prints the profile's first key\n"
     "in plain text: it is shown only once.\n"
     "  --client ID                 client_id\n"
     "  --name NAME                 a name for people\n"
     "  --auth-type TYPE            oidc, jwt or token\n"
     "  --collections ID,ID         collection_ids granted\n"
     "  --discovery-url URL         oidc_discovery_url (oidc)\n"
     "  --jwks-uri URL              oidc_jwks_uri (oidc)\n"
     "  --jwt-key-file FILE         jwt_key (jwt): the file's text, PEM, JWK or HMAC secret,\n"
     "                              sent as it is (64 KiB at most)\n"
     "  --key-claim NAME            the claim that carries the key\n"
     "  --policy ID                 policy_id ('' for none)\n"
     "  --required-claims A,B       default exp ('' for none)\n"
     "  --allowed-issuers A,B       the issuers accepted in iss (default: the IdP's)\n"
     "  --audiences A,B             aud must contain one of them (default: any)\n"
     "  --algorithms A,B            e.g. RS256,ES256\n"
     "  --leeway N                  leeway_seconds (default 60, at most 300)\n"
     "  --ip-allow CIDR,CIDR        client addresses allowed (default: all)\n"
     "  --ip-deny CIDR,CIDR         client addresses refused\n"
     "  --token-types T,T           JWS typ values taken, e.g. at+jwt (default: any)\n"
     "  --active true|false         default true\n"
     "  --no-validate               save an oidc profile without fetching its IdP's keys\n"
     "\n"
     "An oidc profile's IdP is checked only when the profile ends up active and is new, was\n"
     "inactive, or names another discovery URL or JWKS URI: deactivating, deleting or any other\n"
     "change never waits on an IdP that may be down.\n"},
    {"keys",
     "usage: gatehouse keys list PROFILE_ID\n"
     "       gatehouse keys create PROFILE_ID [--grace-seconds N]\n"
     "       gatehouse keys delete PROFILE_ID KEY_ID\n"
     "\n"
     "Access profile keys. `create` makes a new key, prints it in plain text (shown only once)\n"
     "and revokes the profile's other keys at once, or after --grace-seconds N.\n"
     "  --grace-seconds N     keep the other keys valid for N more seconds\n"},
    {"policies",
     "usage: gatehouse policies list\n"
     "       gatehouse policies get ID\n"
     "       gatehouse policies create --name NAME [--rate-limit N/SECONDS] [--quota N/SECONDS]\n"
     "       gatehouse policies update ID FIELDS\n"
     "       gatehouse policies delete ID\n"
     "\n"
     "A policy limits the requests of each access profile that uses it.\n"
     "  --name NAME                 unique name\n"
     "  --rate-limit N/SECONDS      e.g. 100/60; none for no limit\n"
     "  --quota N/SECONDS           e.g. 100000/86400; none for no quota\n"},
    {"providers",
     "usage: gatehouse providers list\n"
     "       gatehouse providers get ID\n"
     "       gatehouse providers refresh ID\n"
     "\n"
     "The identity providers of oidc profiles: issuer, signing keys, last fetch, last error,\n"
     "and the URL fetched (discovery URL or JWKS URI).\n"
     "`refresh` fetches the provider's discovery document and keys now; when that fails it\n"
     "says why and exits 1 (the last good keys keep serving).\n"},
    {"explain",
     "usage: gatehouse explain --method METHOD --path PATH [--header 'Name: value']...\n"
     "\n"
     "Runs the gateway's checks on a request without proxying it and prints each step taken,\n"
     "then the final status and reason.\n"
     "  --method METHOD             the request's method\n"
     "  --path PATH                 the public path, e.g. /orders/v1/items/7\n"
     "  --header 'Name: value'      a request header; may repeat\n"
     "  --client-ip ADDRESS         the caller's address, for ip_allow and ip_deny (default\n"
     "                              127.0.0.1)\n"},
    {"config",
     "usage: gatehouse config export [--secrets] [FILE]\n"
     "       gatehouse config apply [--prune] [--dry-run] [--no-validate] FILE\n"
     "\n"
     "export writes the whole configuration as pretty JSON to FILE (made mode 0600) or to\n"
     "standard output; --secrets includes key hashes and jwt keys. apply replaces the whole\n"
     "configuration with FILE's, atomically: all of it or nothing, and prints the counts and\n"
     "the plan (each object created, changed or deleted). An object the file leaves out is\n"
     "deleted only with --prune: without it such an apply changes nothing, prints the plan and\n"
     "exits 1. A file without \"keys\" keeps the keys of its profiles; a new profile without a\n"
     "key gets one, printed once with the profile's id and name.\n"
     "  --secrets         (export) include key hashes and jwt keys\n"
     "  --prune           (apply) delete the objects FILE leaves out\n"
     "  --dry-run         (apply) ask the server for the plan and print it; nothing changes\n"
     "  --no-validate     (apply) do not fetch the IdPs of oidc profiles\n"},
    {"audit",
     "usage: gatehouse audit [--kind KIND] [--id ID] [--limit N]\n"
     "\n"
     "The audit log, newest first: when, what (create, update, delete, rotate, apply), the kind\n"
     "and id of the object, who (the admin token's name) and from where; also the exports of\n"
     "secrets (config, export_secrets) and refused admin tokens (auth, denied). The newest 50\n"
     "entries unless --limit says otherwise.\n"
     "  --kind KIND       only this kind: collections, endpoints, clients, profiles, keys,\n"
     "                    policies, config or auth\n"
     "  --id ID           only the changes of this object\n"},
};

int gh_cli_admin_help(const char *name, FILE *out)
{
    for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++) {
        if (strcmp(helps[i].command, name) == 0) {
            fputs(helps[i].text, out);
            fputs(common_help, out);
            return 0;
        }
    }
    return -1;
}
