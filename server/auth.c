/* Bearer-token authentication and role lookups. Tokens are random 256-bit
 * secrets, so one SHA-256 is enough to store them; nothing here logs them. */
#include <string.h>
#include <time.h>
#include "rsign/base64.h"
#include "rsign/der.h"
#include "rsign/util.h"
#include "server/auth.h"
#include "server/http.h"

void srv_auth_hash(const char *secret, char out[65])
{
	unsigned char d[64];
	if (rs_hash_compute(RS_HASH_SHA256, secret, strlen(secret), d) != 0) {
		out[0] = '\0';
		return;
	}
	rs_hex_encode(d, 32, out);
}

int srv_auth_new_secret(const char *prefix, char out[SRV_TOKEN_LEN])
{
	size_t pl = strlen(prefix);
	if (pl != 4)
		return -1;
	memcpy(out, prefix, pl);
	return rs_random_hex(32, out + pl);
}

srv_err srv_auth_bearer(const srv_ctx *ctx, const char *header, srv_principal *out)
{
	if (!header || strncasecmp(header, "Bearer ", 7) != 0)
		return SRV_E_UNAUTHORIZED;
	const char *tok = header + 7;
	while (*tok == ' ')
		tok++;
	size_t n = strlen(tok);
	if (n < 8 || n > 256)
		return SRV_E_UNAUTHORIZED;
	char hash[65];
	srv_auth_hash(tok, hash);
	if (!hash[0])
		return SRV_E_INTERNAL;
	srv_st_rc rc = ctx->store->ops->token_lookup(ctx->store, hash, time(NULL), out);
	if (rc == SRV_ST_NOT_FOUND)
		return SRV_E_UNAUTHORIZED;
	return srv_err_from_store(rc);
}

srv_err srv_auth_signer_role(srv_store *st, const srv_principal *actor, const char *signer_id,
			     srv_role *out)
{
	if (actor->admin) {
		*out = SRV_ROLE_OPERATOR;
		return SRV_OK;
	}
	return srv_err_from_store(st->ops->member_role(st, signer_id, actor->id, out));
}
