// SPDX-License-Identifier: Apache-2.0
/*
 * Building a published key set from an IdP's documents, whether they were just fetched or loaded
 * from the store after a restart: both paths apply the same checks. Internal to src/oidc.
 */
#ifndef GH_OIDC_KEYSET_H
#define GH_OIDC_KEYSET_H

#include <stddef.h>
#include <stdint.h>

#include "oidc/provider.h"

/*
 * Reads `issuer` and `jwks_uri` from a discovery document and checks the issuer against
 * `expected_issuer` (SPEC §4). On GH_OK both are new strings the caller frees. `error` (cap bytes)
 * receives a message naming the problem.
 */
int gh_discovery_parse(const char *doc, size_t len, const char *expected_issuer, char **issuer,
                       char **jwks_uri, char *error, size_t cap);

/*
 * A new key set (one reference) from a JWKS document. Takes ownership of the strings `issuer`,
 * `jwks_uri`, `discovery_json` and `jwks_json` in every case. GH_ERR_JWKS_FORM or
 * GH_ERR_JWKS_NO_KEYS (message in `error`) when it holds no usable signing key.
 */
int gh_keyset_build(char *issuer, char *jwks_uri, char *discovery_json, char *jwks_json,
                    int64_t fetched_at, int64_t expires_at, const struct gh_keyset *previous,
                    struct gh_keyset **out, char *error, size_t cap);

#endif
