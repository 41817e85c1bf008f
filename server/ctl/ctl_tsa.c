/* rsignctl's time-stamp authority commands: tsa create|list|get|update|
 * delete over /pki/timestamp-authorities, and tsa operations, the
 * timestamps a TSA issued. */
#include <stddef.h>
#include "server/ctl/ctl_cmds.h"

int ctl_tsa_create(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_field map[] = {
		{"name", "name", CTL_F_STR, NULL, NULL},
		{"cert", "certificateId", CTL_F_STR, NULL, NULL},
		{"policy-oid", "policyOid", CTL_F_STR, NULL, NULL},
		{"accuracy", "accuracySeconds", CTL_F_INT, NULL, NULL},
		{"require-auth", "requireAuth", CTL_F_FLAG, NULL, NULL},
		CTL_FIELDS_END,
	};
	return ctl_send(ctx, a, "POST", map, &ctl_fields_out, "/pki/timestamp-authorities");
}

int ctl_tsa_list(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_column cols[] = {
		{"id", "ID"},
		{"name", "NAME"},
		{"policyOid", "POLICY"},
		{"requireAuth", "REQUIRE AUTH"},
		{"path", "PATH"},
		CTL_COLUMNS_END,
	};
	static const ctl_out out = {ctl_out_table, cols, 0};

	return ctl_request(ctx, a, "GET", NULL, ctl_page_query, &out, "/pki/timestamp-authorities");
}

int ctl_tsa_get(ctl_ctx *ctx, const ctl_args *a)
{
	return ctl_request(ctx, a, "GET", NULL, NULL, &ctl_fields_out,
			   "/pki/timestamp-authorities/%s", a->pos[0]);
}

int ctl_tsa_update(ctl_ctx *ctx, const ctl_args *a)
{
	int rc = ctl_exclusive(a, "require-auth", "no-require-auth");

	if (rc != CTL_EXIT_OK)
		return rc;
	/* only what was given */
	static const ctl_field map[] = {
		{"name", "name", CTL_F_STR, NULL, NULL},
		{"cert", "certificateId", CTL_F_STR, NULL, NULL},
		{"policy-oid", "policyOid", CTL_F_STR, NULL, NULL},
		{"accuracy", "accuracySeconds", CTL_F_INT, NULL, NULL},
		{"require-auth", "requireAuth", CTL_F_TRUE, NULL, NULL},
		{"no-require-auth", "requireAuth", CTL_F_FALSE, NULL, NULL},
		CTL_FIELDS_END,
	};

	if (!ctl_any_option(a))
		return ctl_usage_error(a, "nothing to change");
	return ctl_send(ctx, a, "PATCH", map, &ctl_fields_out, "/pki/timestamp-authorities/%s",
			a->pos[0]);
}

int ctl_tsa_delete(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_out out = {ctl_out_fields, "time-stamp authority deleted", 0};

	return ctl_request(ctx, a, "DELETE", NULL, NULL, &out, "/pki/timestamp-authorities/%s",
			   a->pos[0]);
}

int ctl_tsa_operations(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_column cols[] = {
		{"createdAt", "TIME"},
		{"serialNumber", "SERIAL"},
		{"hashAlgorithm", "HASH"},
		{"messageImprint", "IMPRINT"},
		{"requester", "REQUESTER"},
		{"sourceIp", "FROM"},
		CTL_COLUMNS_END,
	};
	static const ctl_out out = {ctl_out_table, cols, 0};

	return ctl_request(ctx, a, "GET", NULL, ctl_page_query, &out,
			   "/pki/timestamp-authorities/%s/operations", a->pos[0]);
}
