/* The hash chains of the signing history and the audit log (issue 15 item
 * 7): the canonical encoding of a record, its SHA-256 link to the record
 * before it, and the walk that verifies a chain. Shared by both stores
 * (which compute the links as they insert) and by whoever verifies.
 *
 * A chain is a sequence of records numbered chain_seq = 1, 2, 3 ... with
 * no gap. Each record keeps prev_hash (the hash of record chain_seq - 1, 32
 * zero bytes for record 1), body_hash and hash, all lower-case hex:
 *
 *   body_hash = SHA-256(body)
 *   hash      = SHA-256(prev_hash || item("rsign-chain-v1") || item(chain)
 *                       || u64(chain_seq) || item(kind) || body_hash)
 *
 * (hashes as their 32 raw bytes). item(x) is u32(length) then the bytes;
 * u32/u64 are big-endian. chain is "history" or "audit"; kind is the
 * record's status (history) or action (audit). The body is every field of
 * the record in the order below, each as one tag byte then: 0x00 NULL
 * (nothing follows); 0x01 bytes (u32 length, the bytes); 0x02 integer
 * (u64 two's complement). A text is its bytes; NULL and "" differ.
 *   history: id, signer_id, status, algorithm, data_hash, is_digest (int),
 *            actor_type, actor_id, actor_name, grant_id, client_metadata,
 *            source_ip, error_code, approval, created_at (int), idem_key,
 *            request_hash, signature (bytes), then oidc (migration 12)
 *            only when it is set (not NULL, not ""), so that the records
 *            chained before it and those without a login hash as before
 *   audit:   actor_id, actor_name, action, object_type, object_id, detail,
 *            created_at (int)
 * The body is hashed apart so that a purged record (a tombstone: a
 * "denied" history record past its retention, its body cleared) keeps its
 * link: its kind and body_hash stay, and the walk checks the hash from
 * them. */
#ifndef SRV_STORE_CHAIN_H
#define SRV_STORE_CHAIN_H
#include <stddef.h>
#include "server/store/store.h"

#define SRV_CHAIN_LEN 32 /* bytes of a hash */
#define SRV_CHAIN_HEX 65 /* hex + NUL */
#define SRV_CHAIN_TAG "rsign-chain-v1"

typedef enum { SRV_CHAIN_HISTORY = 0, SRV_CHAIN_AUDIT, SRV_CHAIN_COUNT } srv_chain;

const char *srv_chain_name(srv_chain c);	    /* "history" | "audit" */
int srv_chain_parse(const char *s, srv_chain *out); /* 0 or -1 */

/* The body's hash, built field by field (streaming: no size limit). */
typedef struct {
	void *md; /* EVP_MD_CTX */
	int err;
} srv_chain_body;
int srv_chain_body_begin(srv_chain_body *b); /* 0 or -1 */
void srv_chain_body_null(srv_chain_body *b);
void srv_chain_body_bytes(srv_chain_body *b, const void *p, size_t n);
void srv_chain_body_text(srv_chain_body *b, const char *s); /* NULL: a NULL */
void srv_chain_body_int(srv_chain_body *b, long long v);
/* 0 with out, or -1; frees the context either way */
int srv_chain_body_end(srv_chain_body *b, unsigned char out[SRV_CHAIN_LEN]);

/* The body of a record as the stores write it (the optional fields --
 * grant_id, idem_key, request_hash, signature -- are NULL when unset,
 * client_metadata "" is "{}", approval "" is "none", oidc NULL or "" is
 * left out). 0 or -1. */
int srv_chain_body_operation(const srv_operation *o, unsigned char out[SRV_CHAIN_LEN]);
/* actor_name: the name the row gets (the stores resolve "" first). */
int srv_chain_body_audit(const srv_audit *a, const char *actor_name,
			 unsigned char out[SRV_CHAIN_LEN]);

/* hash from prev, chain, seq, kind and body_hash (above). 0 or -1. */
int srv_chain_link(const unsigned char prev[SRV_CHAIN_LEN], srv_chain c, long long seq,
		   const char *kind, const unsigned char body[SRV_CHAIN_LEN],
		   unsigned char out[SRV_CHAIN_LEN]);
/* The bytes of the link input around u64(chain_seq), for a store that
 * computes the link in SQL (PostgreSQL): prefix = item(tag) item(chain),
 * suffix = item(kind) body_hash. The length, 0 when cap is too small. */
size_t srv_chain_link_prefix(srv_chain c, unsigned char *out, size_t cap);
size_t srv_chain_link_suffix(const char *kind, const unsigned char body[SRV_CHAIN_LEN],
			     unsigned char *out, size_t cap);

void srv_chain_hex(const unsigned char h[SRV_CHAIN_LEN], char out[SRV_CHAIN_HEX]);
int srv_chain_unhex(const char *hex, unsigned char out[SRV_CHAIN_LEN]); /* 0 or -1 */
extern const char srv_chain_genesis[SRV_CHAIN_HEX];			/* 64 zeros */

/* ---- verification ------------------------------------------------------ */

/* One record of a chain as stored, in table order (the stores' chain_rows
 * op). Text fields "" when NULL; chain_seq 0 when NULL. body is the hash
 * of the body as read (meaningless for a tombstone). */
typedef struct srv_chain_row {
	long long row;	      /* the table's own seq: insertion order */
	char id[RS_UUID_LEN]; /* operations.id; the audit seq as text */
	long long chain_seq;
	char prev_hash[SRV_CHAIN_HEX];
	char body_hash[SRV_CHAIN_HEX];
	char hash[SRV_CHAIN_HEX];
	char kind[41]; /* status | action */
	int purged;    /* a tombstone */
	unsigned char body[SRV_CHAIN_LEN];
} srv_chain_row;

/* A signed checkpoint of a chain's head. */
typedef struct srv_checkpoint {
	srv_chain chain;
	long long seq;
	char hash[SRV_CHAIN_HEX];
	long long created_at;
	unsigned char sig[160]; /* DER ECDSA signature */
	size_t sig_len;
	char replica[65]; /* who signed it (informative) */
} srv_checkpoint;

/* What a checkpoint signs: "rsign-checkpoint-v1" item, item(chain),
 * u64(seq), hash (32 bytes), u64(created_at). The length, 0 on error. */
size_t srv_checkpoint_msg(const srv_checkpoint *c, unsigned char *out, size_t cap);

/* The outcome of a walk. */
typedef enum {
	SRV_CHAIN_GOOD = 0,
	SRV_CHAIN_CHANGED,
	SRV_CHAIN_REMOVED,
	SRV_CHAIN_INSERTED,
	SRV_CHAIN_REORDERED,
	SRV_CHAIN_BAD_CHECKPOINT,
} srv_chain_bad;
const char *srv_chain_bad_name(srv_chain_bad b); /* "ok" "changed" ... "bad checkpoint" */

typedef struct {
	srv_chain chain;
	srv_chain_bad bad;
	long long seq;	      /* the first bad record's chain_seq */
	char id[RS_UUID_LEN]; /* its record id ("" when none is left) */
	char detail[160];     /* what failed, in words */
	long long records;    /* records walked (tombstones included) */
	long long tombstones;
	long long checkpoints; /* checked */
} srv_chain_report;

/* Checks a checkpoint's signature: 0 good, 1 bad, -1 cannot check. */
typedef int (*srv_checkpoint_verify_fn)(void *arg, const srv_checkpoint *c);

/* Walks chain c of st in table order, page by page (bounded memory),
 * checking every link, hash and seq, the head row, and every checkpoint
 * (signature with verify -- NULL: no checkpoint is checked -- and hash at
 * its seq). OK with *rep (rep->bad says whether the chain is good), or the
 * store's error. */
srv_st_rc srv_chain_verify(srv_store *st, srv_chain c, srv_checkpoint_verify_fn verify, void *arg,
			   srv_chain_report *rep);

#endif
