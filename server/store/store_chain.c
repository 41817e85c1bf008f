/* The hash chains of the history and the audit log: the canonical encoding
 * and the link (the definition is in store_chain.h), and the walk that
 * verifies a chain through the store's chain ops, page by page. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "rsign/log.h"
#include "server/store/store_chain.h"

#define PAGE 256   /* records read per step of a walk */
#define CP_PAGE 64 /* checkpoints read per step */
#define CP_TAG "rsign-checkpoint-v1"

const char srv_chain_genesis[SRV_CHAIN_HEX] =
	"0000000000000000000000000000000000000000000000000000000000000000";

static const char *const names[SRV_CHAIN_COUNT] = {"history", "audit"};

const char *srv_chain_name(srv_chain c)
{
	return c >= 0 && c < SRV_CHAIN_COUNT ? names[c] : "";
}

int srv_chain_parse(const char *s, srv_chain *out)
{
	for (int i = 0; s && i < SRV_CHAIN_COUNT; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = (srv_chain)i;
			return 0;
		}
	return -1;
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

/* ---- the body ------------------------------------------------------------ */

static void feed(srv_chain_body *b, const void *p, size_t n)
{
	if (!b->err && n && EVP_DigestUpdate(b->md, p, n) != 1)
		b->err = 1;
}

int srv_chain_body_begin(srv_chain_body *b)
{
	b->err = 0;
	b->md = EVP_MD_CTX_new();
	if (!b->md || EVP_DigestInit_ex(b->md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(b->md);
		b->md = NULL;
		return -1;
	}
	return 0;
}

void srv_chain_body_null(srv_chain_body *b)
{
	unsigned char t = 0;

	feed(b, &t, 1);
}

void srv_chain_body_bytes(srv_chain_body *b, const void *p, size_t n)
{
	unsigned char h[5] = {1};

	if (n > UINT32_MAX) {
		b->err = 1;
		return;
	}
	put32(h + 1, (uint32_t)n);
	feed(b, h, sizeof(h));
	feed(b, p, n);
}

void srv_chain_body_text(srv_chain_body *b, const char *s)
{
	if (!s)
		srv_chain_body_null(b);
	else
		srv_chain_body_bytes(b, s, strlen(s));
}

void srv_chain_body_int(srv_chain_body *b, long long v)
{
	unsigned char h[9] = {2};

	put64(h + 1, (uint64_t)v);
	feed(b, h, sizeof(h));
}

int srv_chain_body_end(srv_chain_body *b, unsigned char out[SRV_CHAIN_LEN])
{
	unsigned int n = 0;
	int rc = -1;

	if (b->md && !b->err && EVP_DigestFinal_ex(b->md, out, &n) == 1 && n == SRV_CHAIN_LEN)
		rc = 0;
	EVP_MD_CTX_free(b->md);
	b->md = NULL;
	return rc;
}

static const char *opt(const char *s)
{
	return s && *s ? s : NULL;
}

int srv_chain_body_operation(const srv_operation *o, unsigned char out[SRV_CHAIN_LEN])
{
	srv_chain_body b;
	int keyed = o->idem_key[0] != '\0';

	if (srv_chain_body_begin(&b) != 0)
		return -1;
	srv_chain_body_text(&b, o->id);
	srv_chain_body_text(&b, o->signer_id);
	srv_chain_body_text(&b, o->status);
	srv_chain_body_text(&b, o->algorithm);
	srv_chain_body_text(&b, o->data_hash);
	srv_chain_body_int(&b, o->is_digest ? 1 : 0);
	srv_chain_body_text(&b, o->actor_type);
	srv_chain_body_text(&b, o->actor_id);
	srv_chain_body_text(&b, o->actor_name ? o->actor_name : "");
	srv_chain_body_text(&b, opt(o->grant_id));
	srv_chain_body_text(&b,
			    o->client_metadata && *o->client_metadata ? o->client_metadata : "{}");
	srv_chain_body_text(&b, o->source_ip);
	srv_chain_body_text(&b, o->error_code);
	srv_chain_body_text(&b, o->approval[0] ? o->approval : "none");
	srv_chain_body_int(&b, (long long)o->created_at);
	srv_chain_body_text(&b, keyed ? o->idem_key : NULL);
	srv_chain_body_text(&b, keyed ? opt(o->request_hash) : NULL);
	if (keyed)
		srv_chain_body_bytes(&b, o->signature, o->signature_len);
	else
		srv_chain_body_null(&b);
	if (o->oidc && *o->oidc) /* appended only when set: older bodies stay as they were */
		srv_chain_body_text(&b, o->oidc);
	return srv_chain_body_end(&b, out);
}

int srv_chain_body_audit(const srv_audit *a, const char *actor_name,
			 unsigned char out[SRV_CHAIN_LEN])
{
	srv_chain_body b;

	if (srv_chain_body_begin(&b) != 0)
		return -1;
	srv_chain_body_text(&b, a->actor_id);
	srv_chain_body_text(&b, actor_name ? actor_name : "");
	srv_chain_body_text(&b, a->action);
	srv_chain_body_text(&b, a->object_type);
	srv_chain_body_text(&b, a->object_id);
	srv_chain_body_text(&b, a->detail && *a->detail ? a->detail : "{}");
	srv_chain_body_int(&b, (long long)a->created_at);
	return srv_chain_body_end(&b, out);
}

/* ---- the link ------------------------------------------------------------ */

static size_t item(const char *s, unsigned char *out, size_t cap)
{
	size_t n = strlen(s);

	if (n > UINT32_MAX || cap < 4 + n)
		return 0;
	put32(out, (uint32_t)n);
	memcpy(out + 4, s, n);
	return 4 + n;
}

size_t srv_chain_link_prefix(srv_chain c, unsigned char *out, size_t cap)
{
	size_t a = item(SRV_CHAIN_TAG, out, cap), b;

	if (!a || c < 0 || c >= SRV_CHAIN_COUNT)
		return 0;
	b = item(names[c], out + a, cap - a);
	return b ? a + b : 0;
}

size_t srv_chain_link_suffix(const char *kind, const unsigned char body[SRV_CHAIN_LEN],
			     unsigned char *out, size_t cap)
{
	size_t a = item(kind ? kind : "", out, cap);

	if (!a || cap - a < SRV_CHAIN_LEN)
		return 0;
	memcpy(out + a, body, SRV_CHAIN_LEN);
	return a + SRV_CHAIN_LEN;
}

int srv_chain_link(const unsigned char prev[SRV_CHAIN_LEN], srv_chain c, long long seq,
		   const char *kind, const unsigned char body[SRV_CHAIN_LEN],
		   unsigned char out[SRV_CHAIN_LEN])
{
	unsigned char buf[SRV_CHAIN_LEN + 64 + 8 + 80 + SRV_CHAIN_LEN];
	size_t n = 0, k;
	unsigned int len = 0;

	memcpy(buf, prev, SRV_CHAIN_LEN);
	n = SRV_CHAIN_LEN;
	if (!(k = srv_chain_link_prefix(c, buf + n, 64)))
		return -1;
	n += k;
	put64(buf + n, (uint64_t)seq);
	n += 8;
	if (!(k = srv_chain_link_suffix(kind, body, buf + n, sizeof(buf) - n)))
		return -1;
	n += k;
	return EVP_Digest(buf, n, out, &len, EVP_sha256(), NULL) == 1 && len == SRV_CHAIN_LEN ? 0
											      : -1;
}

void srv_chain_hex(const unsigned char h[SRV_CHAIN_LEN], char out[SRV_CHAIN_HEX])
{
	static const char x[] = "0123456789abcdef";

	for (int i = 0; i < SRV_CHAIN_LEN; i++) {
		out[2 * i] = x[h[i] >> 4];
		out[2 * i + 1] = x[h[i] & 15];
	}
	out[2 * SRV_CHAIN_LEN] = '\0';
}

static int nib(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int srv_chain_unhex(const char *hex, unsigned char out[SRV_CHAIN_LEN])
{
	if (!hex || strlen(hex) != 2 * SRV_CHAIN_LEN)
		return -1;
	for (int i = 0; i < SRV_CHAIN_LEN; i++) {
		int hi = nib(hex[2 * i]), lo = nib(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

size_t srv_checkpoint_msg(const srv_checkpoint *c, unsigned char *out, size_t cap)
{
	size_t n, k;

	if (!(n = item(CP_TAG, out, cap)) ||
	    !(k = item(srv_chain_name(c->chain), out + n, cap - n)))
		return 0;
	n += k;
	if (cap - n < 8 + SRV_CHAIN_LEN + 8 || srv_chain_unhex(c->hash, out + n + 8) != 0)
		return 0;
	put64(out + n, (uint64_t)c->seq);
	n += 8 + SRV_CHAIN_LEN;
	put64(out + n, (uint64_t)c->created_at);
	return n + 8;
}

const char *srv_chain_bad_name(srv_chain_bad b)
{
	static const char *const w[] = {"ok",	    "changed",	 "removed",
					"inserted", "reordered", "bad checkpoint"};

	return b >= 0 && b <= SRV_CHAIN_BAD_CHECKPOINT ? w[b] : "?";
}

/* ---- the walk ------------------------------------------------------------ */

typedef struct {
	srv_store *st;
	srv_chain c;
	srv_checkpoint_verify_fn verify;
	void *arg;
	srv_chain_report *rep;
	long long next;		     /* the chain_seq expected next */
	char prev[SRV_CHAIN_HEX];    /* the hash of record next - 1 */
	char prev_id[RS_UUID_LEN];   /* its id */
	srv_checkpoint cps[CP_PAGE]; /* checkpoints not yet reached */
	size_t ncp, icp;
	long long cp_after; /* the last checkpoint seq read */
	int cp_done;	    /* none left in the store */
} walk;

static void bad(walk *w, srv_chain_bad b, long long seq, const char *id, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void bad(walk *w, srv_chain_bad b, long long seq, const char *id, const char *fmt, ...)
{
	va_list ap;

	w->rep->bad = b;
	w->rep->seq = seq;
	rs_strlcpy(w->rep->id, id ? id : "", sizeof(w->rep->id));
	va_start(ap, fmt);
	vsnprintf(w->rep->detail, sizeof(w->rep->detail), fmt, ap);
	va_end(ap);
}

/* The next checkpoint (NULL when none is left); reads a page when needed. */
static srv_st_rc next_cp(walk *w, srv_checkpoint **out)
{
	srv_st_rc r;

	*out = NULL;
	if (w->icp == w->ncp && !w->cp_done) {
		w->icp = w->ncp = 0;
		r = w->st->ops->checkpoint_list(w->st, w->c, w->cp_after, CP_PAGE, w->cps, &w->ncp);
		if (r != SRV_ST_OK)
			return r;
		if (w->ncp < CP_PAGE)
			w->cp_done = 1;
		if (w->ncp)
			w->cp_after = w->cps[w->ncp - 1].seq;
	}
	if (w->icp < w->ncp)
		*out = &w->cps[w->icp];
	return SRV_ST_OK;
}

/* Checks the checkpoints at or below seq (the record just accepted, whose
 * hash is hash). */
static srv_st_rc checkpoints_upto(walk *w, long long seq, const char *hash, const char *id)
{
	srv_checkpoint *cp;
	srv_st_rc r;

	while ((r = next_cp(w, &cp)) == SRV_ST_OK && cp && cp->seq <= seq) {
		int v = w->verify(w->arg, cp);
		if (v != 0) {
			bad(w, SRV_CHAIN_BAD_CHECKPOINT, cp->seq, cp->seq == seq ? id : "",
			    v < 0 ? "the checkpoint's signature cannot be checked"
				  : "the checkpoint's signature is not the log key's");
			return SRV_ST_OK;
		}
		if (cp->seq != seq || strcmp(cp->hash, hash) != 0) {
			bad(w, SRV_CHAIN_BAD_CHECKPOINT, cp->seq, cp->seq == seq ? id : "",
			    "the signed head hash differs from the record's hash");
			return SRV_ST_OK;
		}
		w->rep->checkpoints++;
		w->icp++;
	}
	return r;
}

/* One row in table order; sets rep->bad at the first fault. */
static srv_st_rc step(walk *w, const srv_chain_row *row)
{
	unsigned char prev[SRV_CHAIN_LEN], body[SRV_CHAIN_LEN], h[SRV_CHAIN_LEN];
	char hex[SRV_CHAIN_HEX];
	size_t n = 0;
	srv_st_rc r;

	if (row->chain_seq <= 0 || !row->hash[0]) {
		bad(w, SRV_CHAIN_INSERTED, w->next, row->id, "a record outside the chain");
		return SRV_ST_OK;
	}
	if (row->chain_seq < w->next) {
		bad(w, SRV_CHAIN_INSERTED, row->chain_seq, row->id,
		    "a second record with chain seq %lld", row->chain_seq);
		return SRV_ST_OK;
	}
	if (row->chain_seq > w->next) {
		if ((r = w->st->ops->chain_count_seq(w->st, w->c, w->next, &n)) != SRV_ST_OK)
			return r;
		if (n)
			bad(w, SRV_CHAIN_REORDERED, w->next, row->id,
			    "record %lld comes after record %lld", w->next, row->chain_seq);
		else
			bad(w, SRV_CHAIN_REMOVED, w->next, row->id,
			    "record %lld is missing (found %lld in its place)", w->next,
			    row->chain_seq);
		return SRV_ST_OK;
	}
	if (strcmp(row->prev_hash, w->prev) != 0) {
		/* the record before changed, and its own hash with it */
		if (w->next == 1)
			bad(w, SRV_CHAIN_CHANGED, 1, row->id, "the first record's prev_hash");
		else
			bad(w, SRV_CHAIN_CHANGED, w->next - 1, w->prev_id,
			    "its hash is not the one record %lld links to", w->next);
		return SRV_ST_OK;
	}
	if (row->purged) {
		w->rep->tombstones++;
		if (w->c != SRV_CHAIN_HISTORY || strcmp(row->kind, "denied") != 0) {
			bad(w, SRV_CHAIN_CHANGED, row->chain_seq, row->id,
			    "a purged record whose status is not denied");
			return SRV_ST_OK;
		}
		if (srv_chain_unhex(row->body_hash, body) != 0) {
			bad(w, SRV_CHAIN_CHANGED, row->chain_seq, row->id,
			    "a purged record without its body hash");
			return SRV_ST_OK;
		}
	} else {
		memcpy(body, row->body, sizeof(body));
		srv_chain_hex(body, hex);
		if (strcmp(hex, row->body_hash) != 0) {
			bad(w, SRV_CHAIN_CHANGED, row->chain_seq, row->id,
			    "its fields do not hash to its body hash");
			return SRV_ST_OK;
		}
	}
	if (srv_chain_unhex(w->prev, prev) != 0 ||
	    srv_chain_link(prev, w->c, row->chain_seq, row->kind, body, h) != 0)
		return SRV_ST_FAILED;
	srv_chain_hex(h, hex);
	if (strcmp(hex, row->hash) != 0) {
		bad(w, SRV_CHAIN_CHANGED, row->chain_seq, row->id,
		    "its hash is not the hash of its fields and link");
		return SRV_ST_OK;
	}
	w->rep->records++;
	w->next++;
	rs_strlcpy(w->prev, row->hash, sizeof(w->prev));
	rs_strlcpy(w->prev_id, row->id, sizeof(w->prev_id));
	if (w->verify)
		return checkpoints_upto(w, row->chain_seq, row->hash, row->id);
	return SRV_ST_OK;
}

/* After the last row: the head row and the checkpoints past the end. */
static srv_st_rc finish(walk *w)
{
	long long head = 0;
	char hash[SRV_CHAIN_HEX] = "";
	srv_checkpoint *cp;
	srv_st_rc r;

	if ((r = w->st->ops->chain_head(w->st, w->c, &head, hash)) != SRV_ST_OK)
		return r;
	if (head > w->next - 1) {
		bad(w, SRV_CHAIN_REMOVED, w->next, "",
		    "the chain ends at %lld but its head is %lld", w->next - 1, head);
		return SRV_ST_OK;
	}
	if (head < w->next - 1) {
		bad(w, SRV_CHAIN_INSERTED, head + 1, "",
		    "records past the chain's head (%lld, %lld records)", head, w->next - 1);
		return SRV_ST_OK;
	}
	if (strcmp(hash, w->prev) != 0) {
		bad(w, SRV_CHAIN_CHANGED, head, w->prev_id,
		    "the last record's hash is not the head's");
		return SRV_ST_OK;
	}
	if (!w->verify)
		return SRV_ST_OK;
	if ((r = next_cp(w, &cp)) == SRV_ST_OK && cp)
		bad(w, SRV_CHAIN_REMOVED, w->next, "",
		    "a checkpoint signs record %lld, past the chain's end (%lld)", cp->seq,
		    w->next - 1);
	return r;
}

srv_st_rc srv_chain_verify(srv_store *st, srv_chain c, srv_checkpoint_verify_fn verify, void *arg,
			   srv_chain_report *rep)
{
	srv_chain_row *rows;
	walk *w;
	long long after = 0;
	size_t n = 0;
	srv_st_rc r = SRV_ST_OK;

	if (!st || !rep || c < 0 || c >= SRV_CHAIN_COUNT)
		return SRV_ST_FAILED;
	memset(rep, 0, sizeof(*rep));
	rep->chain = c;
	rows = calloc(PAGE, sizeof(*rows));
	w = calloc(1, sizeof(*w));
	if (!rows || !w) {
		free(rows);
		free(w);
		return SRV_ST_FAILED;
	}
	*w = (walk){.st = st, .c = c, .verify = verify, .arg = arg, .rep = rep, .next = 1};
	rs_strlcpy(w->prev, srv_chain_genesis, sizeof(w->prev));
	do {
		if ((r = st->ops->chain_rows(st, c, after, PAGE, rows, &n)) != SRV_ST_OK)
			break;
		for (size_t i = 0; i < n && r == SRV_ST_OK && rep->bad == SRV_CHAIN_GOOD; i++)
			r = step(w, &rows[i]);
		if (n)
			after = rows[n - 1].row;
	} while (r == SRV_ST_OK && rep->bad == SRV_CHAIN_GOOD && n == PAGE);
	if (r == SRV_ST_OK && rep->bad == SRV_CHAIN_GOOD)
		r = finish(w);
	free(rows);
	free(w);
	return r;
}
