// SPDX-License-Identifier: Apache-2.0
/*
 * Short-lived jansson values from a per-thread bump region. A token's header and claims become
 * some seventy small jansson values that live for one decision; from malloc they cost a fresh
 * token more than the rest of its parsing (the allocator's per-thread cache holds seven blocks per
 * size, the rest goes the slow way). Between enter and leave, jansson's allocations on this thread
 * come from the thread's region (malloc when it is full); freeing region memory only counts down,
 * and the region is rewound when nothing in it is alive any more, which is checked when the thread
 * enters again. So a value that outlives its decision (kept by whoever took a reference) only
 * keeps the region from rewinding until it is freed, from whichever thread. Built with
 * AddressSanitizer, the region is never used, so every value stays visible to it.
 */
#ifndef GH_COMMON_JSON_REGION_H
#define GH_COMMON_JSON_REGION_H

#include <stddef.h>

/* Nestable; each enter needs its leave, on the same thread. */
void gh_json_region_enter(void);
void gh_json_region_leave(void);

/* How many values of this thread's region are alive (for tests); -1 when it has none. */
long gh_json_region_live(void);

#endif
