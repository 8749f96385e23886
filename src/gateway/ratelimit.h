// SPDX-License-Identifier: Apache-2.0
/*
 * Rate limits and quotas of access profiles (SPEC §1 policies, §5 429 answers): a token bucket per
 * profile for `rate_limit` and a fixed window counter for `quota`, shared by every worker thread
 * with atomic operations only. Quota counts are saved through a callback so they survive a restart.
 */
#ifndef GH_GATEWAY_RATELIMIT_H
#define GH_GATEWAY_RATELIMIT_H

#include <stdint.h>

#include "store/config.h"

struct gh_rate_verdict {
    int allowed;
    int limited;           /* the profile has a rate limit or quota: send RateLimit-* headers */
    int64_t limit;         /* RateLimit-Limit: the tighter of the two, in requests per window */
    int64_t remaining;     /* RateLimit-Remaining */
    int64_t reset_seconds; /* RateLimit-Reset */
    int64_t retry_after;   /* Retry-After (seconds) when refused */
};

/* Saves and loads quota windows: (profile id, window index, count). Never called on a worker:
 * everything is loaded when the limiter is made, and saved by gh_ratelimiter_flush. */
typedef void (*gh_quota_visit)(void *arg, const char *profile_id, int64_t window, int64_t count);
struct gh_quota_persistence {
    void *ctx;
    int (*load_all)(void *ctx, gh_quota_visit visit, void *arg);
    int (*save)(void *ctx, const char *profile_id, int64_t window, int64_t count);
};

struct gh_ratelimiter;

int gh_ratelimiter_new(const struct gh_quota_persistence *persistence, struct gh_ratelimiter **out);
void gh_ratelimiter_free(struct gh_ratelimiter *rl);

/* Counts one request of `profile` at `now_ms` and says whether it may pass. Lock-free. */
void gh_ratelimit_check(struct gh_ratelimiter *rl, const struct gh_config_profile *profile,
                        int64_t now_ms, struct gh_rate_verdict *v);

/* Writes changed quota counters through the persistence (from a background thread or at stop). */
void gh_ratelimiter_flush(struct gh_ratelimiter *rl);

#endif
