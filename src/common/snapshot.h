// SPDX-License-Identifier: Apache-2.0
/*
 * Immutable, reference-counted snapshots published through a slot: one writer thread replaces the
 * current snapshot, any number of worker threads take a reference to it without locks and without
 * ever waiting. The writer pays instead: after swapping the pointer it waits (spinning, for the few
 * instructions a reader needs) until no reader is between loading the old pointer and counting its
 * reference, so the old snapshot is never freed under a reader's feet.
 */
#ifndef GH_COMMON_SNAPSHOT_H
#define GH_COMMON_SNAPSHOT_H

#include <stdatomic.h>
#include <stddef.h>

struct gh_snapshot {
    atomic_long refs;
    void (*destroy)(struct gh_snapshot *snap); /* called once, when the last reference goes */
};

struct gh_snapshot_slot {
    _Atomic(struct gh_snapshot *) current;
    atomic_long readers; /* readers between loading `current` and taking their reference */
};

/* Starts a snapshot with one reference, owned by the caller. */
static inline void gh_snapshot_init(struct gh_snapshot *snap, void (*destroy)(struct gh_snapshot *))
{
    atomic_init(&snap->refs, 1);
    snap->destroy = destroy;
}

static inline struct gh_snapshot *gh_snapshot_ref(struct gh_snapshot *snap)
{
    if (snap != NULL)
        atomic_fetch_add_explicit(&snap->refs, 1, memory_order_relaxed);
    return snap;
}

/* Drops a reference (NULL is fine); the last one destroys the snapshot. */
static inline void gh_snapshot_unref(struct gh_snapshot *snap)
{
    if (snap != NULL && atomic_fetch_sub_explicit(&snap->refs, 1, memory_order_acq_rel) == 1)
        snap->destroy(snap);
}

static inline void gh_snapshot_slot_init(struct gh_snapshot_slot *slot)
{
    atomic_init(&slot->current, NULL);
    atomic_init(&slot->readers, 0);
}

/* A new reference to the current snapshot (NULL when none was published); the caller unrefs it. */
struct gh_snapshot *gh_snapshot_acquire(struct gh_snapshot_slot *slot);

/* Publishes `snap`, taking over the caller's reference, and drops the slot's reference to the
 * previous one. Only one thread may publish into a slot at a time. */
void gh_snapshot_publish(struct gh_snapshot_slot *slot, struct gh_snapshot *snap);

/* Drops the slot's snapshot (at shutdown, when no reader is left). */
void gh_snapshot_slot_clear(struct gh_snapshot_slot *slot);

#endif
