// SPDX-License-Identifier: Apache-2.0
/*
 * The reader side is wait-free: two counter updates around a pointer load and a reference count.
 * Sequentially consistent atomics make the writer's "swap, then see readers == 0" imply that any
 * reader still holding the old pointer has already counted its reference.
 */
#include "common/snapshot.h"

#include <sched.h>

struct gh_snapshot *gh_snapshot_acquire(struct gh_snapshot_slot *slot)
{
    struct gh_snapshot *snap;

    atomic_fetch_add(&slot->readers, 1);
    snap = atomic_load(&slot->current);
    gh_snapshot_ref(snap);
    atomic_fetch_sub(&slot->readers, 1);
    return snap;
}

void gh_snapshot_publish(struct gh_snapshot_slot *slot, struct gh_snapshot *snap)
{
    struct gh_snapshot *old = atomic_exchange(&slot->current, snap);

    while (atomic_load(&slot->readers) != 0)
        sched_yield();
    gh_snapshot_unref(old);
}

void gh_snapshot_slot_clear(struct gh_snapshot_slot *slot)
{
    gh_snapshot_publish(slot, NULL);
}
