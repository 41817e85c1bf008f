/* Signed checkpoints of the hash chains (issue 15 item 7): the log key in
 * the token, and the thread that signs each chain's head every
 * checkpoint_every records, every checkpoint_interval seconds while it
 * moves, and once more at a clean stop. */
#ifndef SRV_RSIGND_CHECKPOINT_H
#define SRV_RSIGND_CHECKPOINT_H
#include <stddef.h>
#include "server/http/http.h"
#include "server/store/store_chain.h"

#define SRV_LOG_KEY_LABEL "rsign-log-checkpoint"

/* The log key: found through the database's meta (log_key; log_key_ckid
 * and log_key_spki before it) or, at the first start, generated in the
 * token (ECDSA P-256, label SRV_LOG_KEY_LABEL) and recorded there unless a
 * replica starting at the same time recorded its key first, which is then
 * used (store meta_add: the first one wins). Either way the pair
 * is checked (the token signs, the public key verifies) before it is used,
 * so a public key swapped in the database is refused. Sets ctx->log_ckid
 * and ctx->log_spki. 0, or -1 + err. */
int srv_logkey_start(srv_ctx *ctx, char *err, size_t errlen);

/* Signs chain c's head now unless it is checkpointed already (or empty).
 * *wrote (NULL = not wanted) = 1 when a checkpoint was stored. 0 or -1. */
int srv_checkpoint_now(srv_ctx *ctx, srv_chain c, int *wrote);

typedef struct srv_checkpointer srv_checkpointer;
/* Starts the thread. NULL + err on failure. */
srv_checkpointer *srv_checkpointer_start(srv_ctx *ctx, long long every, long long interval,
					 char *err, size_t errlen);
/* Stops it and signs each chain's head once more (the clean stop's
 * checkpoint). NULL-safe. */
void srv_checkpointer_stop(srv_checkpointer *cp);

#endif
