// SPDX-License-Identifier: Apache-2.0
/*
 * The gateway's decision for one request (SPEC §2, §3, §5), with no I/O: route it to an endpoint,
 * find its credential, bind it to an access profile, verify it, and authorize it. The data plane
 * calls it for every request, and `POST /v1/explain` calls it with the steps recorded. Rate limits
 * (stateful) and proxying (I/O) come after it, in the server.
 */
#ifndef GH_GATEWAY_PIPELINE_H
#define GH_GATEWAY_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/tokencache.h"
#include "jose/keyclaims.h"
#include "oidc/provider.h"
#include "store/config.h"

/* What the pipeline reads of a request. Slices into the caller's buffers, not NUL-terminated. */
struct gh_request_view {
    const char *method;
    size_t method_len;
    const char *path; /* without the query string, as received (not percent-decoded) */
    size_t path_len;
    const char *query; /* after the '?', as received; NULL when the target has none */
    size_t query_len;
    const char *authorization; /* NULL when absent */
    size_t authorization_len;
    const char *api_token; /* the api-token header, NULL when absent */
    size_t api_token_len;
    int family; /* 4 or 6: the client's address */
    uint8_t addr[16];
    int explain; /* record each step in the decision (for POST /v1/explain) */
    /* The calling thread's verified-token cache, or NULL for none (explain: every step runs).
     * Never shared between threads: the pipeline reads and fills it without locks. */
    struct gh_token_cache *cache;
};

/* Shared by every request, immutable while serving. */
struct gh_gateway_settings {
    struct gh_key_claims default_claims; /* --key-claims */
};

enum gh_outcome {
    GH_OUTCOME_ALLOW,   /* proxy it */
    GH_OUTCOME_DENY,    /* answer status/error */
    GH_OUTCOME_REFETCH, /* unknown kid: park it, ask `provider` to refetch, then decide again */
};

struct gh_step {
    const char *name; /* "route", "credential", "profile", "signature", "claims", "authorize" */
    int ok;
    char detail[200];
};

#define GH_MAX_STEPS 12

struct gh_decision {
    enum gh_outcome outcome;
    int status;        /* 200 when allowed */
    const char *error; /* SPEC §5 code: "not_found", "invalid_token", ... */
    int reason;        /* GH_ERR_* behind a 401 invalid_token (its reason word) */
    int token_sent;    /* a credential was presented: WWW-Authenticate names the error */
    char message[256]; /* one sentence, never a token or secret */
    char allow[64];    /* 405: the path's methods for the Allow header ("GET, POST"); else "" */
    const struct gh_config_collection *collection;
    const struct gh_config_endpoint *endpoint;
    const struct gh_config_profile *profile;
    const char *rest; /* the request path after the collection path */
    size_t rest_len;
    char *claims_b64; /* JWT auth: base64url of the verified payload bytes (owned) */
    char *subject;    /* the token's sub when a string (owned), for logs; NULL otherwise */
    struct gh_provider *provider; /* REFETCH: whom to ask */
    struct gh_keyset *keyset;     /* REFETCH: the set the kid was missing from (owned reference) */
    char *kid;                    /* REFETCH: the token's kid (owned, kid_len bytes) */
    size_t kid_len;
    int cache_hit; /* the JWT's verification was taken from req->cache (the server counts it) */
    int authorization_verified; /* Authorization held the verified credential (a Bearer JWT) */
    struct gh_step steps[GH_MAX_STEPS];
    size_t n_steps;
};

/*
 * Decides for `req` against `config` at `now` (epoch seconds). `after_refetch` says a refetch for
 * this request already happened, so an unknown kid is now final. Always fills *d; release it with
 * gh_decision_clear. With req->cache, a JWT that verified before may skip its verification (then
 * d->cache_hit is set), and one that verifies now is remembered; refusals never are.
 */
void gh_gateway_decide(const struct gh_gateway_settings *settings, const struct gh_config *config,
                       const struct gh_request_view *req, int64_t now, int after_refetch,
                       struct gh_decision *d);

void gh_decision_clear(struct gh_decision *d);

#endif
