/* rsignctl's approval commands: signing policies, signing requests and
 * their decisions, grants, and the audit log. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rsign/json.h"
#include "server/ctl/ctl_cmds.h"

/* ---- policies --------------------------------------------------------- */

/* Shared by create and update: update sends only what was given. */
static const ctl_field policy_map[] = {
	{"name", "name", CTL_F_STR, NULL, NULL},
	{"approver", "approvers", CTL_F_LIST, NULL, "/principals"},
	{"required", "requiredApprovals", CTL_F_INT, NULL, NULL},
	{"max-signings", "constraints.maxSignings", CTL_F_INT, NULL, NULL},
	{"max-window", "constraints.maxWindowDuration", CTL_F_INT, NULL, NULL},
	{"request-ttl", "requestTtl", CTL_F_INT, NULL, NULL},
	CTL_FIELDS_END,
};

/* --bypass-claim CLAIM=PATTERN (repeatable) as the bypassClaims object;
 * nothing when none is given. */
static int bypass_claims(const ctl_args *a, cJSON *req)
{
	cJSON *o;

	if (!ctl_list_count(a, "bypass-claim"))
		return CTL_EXIT_OK;
	if (!(o = cJSON_AddObjectToObject(req, "bypassClaims"))) {
		fprintf(stderr, "rsignctl: out of memory\n");
		return CTL_EXIT_SOFTWARE;
	}
	return ctl_claim_patterns(a, "bypass-claim", o);
}

int ctl_policy_create(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_field bypass[] = {
		{"bypass-identities", "bypassForMachineIdentities", CTL_F_FLAG, NULL, NULL},
		CTL_FIELDS_END,
	};
	cJSON *req = NULL;
	int rc;

	if (!ctl_arg(a, "max-signings") && !ctl_arg(a, "max-window"))
		return ctl_usage_error(a, "give --max-signings, --max-window or both");
	if (ctl_arg_int(a, "required") < 1 ||
	    ctl_arg_int(a, "required") > ctl_list_count(a, "approver"))
		return ctl_usage_error(a, "--required must be from 1 to the number of approvers");
	rc = ctl_body(ctx, a, policy_map, &req);
	if (rc == CTL_EXIT_OK)
		rc = ctl_body(ctx, a, bypass, &req);
	if (rc == CTL_EXIT_OK)
		rc = bypass_claims(a, req);
	if (rc == CTL_EXIT_OK)
		rc = ctl_request(ctx, a, "POST", req, NULL, &ctl_fields_out,
				 "/pki/signing-policies");
	cJSON_Delete(req);
	return rc;
}

int ctl_policy_list(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_column cols[] = {
		{"id", "ID"},
		{"name", "NAME"},
		{"requiredApprovals", "REQUIRED"},
		{"requestTtl", "REQUEST TTL"},
		{"bypassForMachineIdentities", "BYPASS IDENTITIES"},
		CTL_COLUMNS_END,
	};
	static const ctl_out out = {ctl_out_table, cols, 0};

	return ctl_request(ctx, a, "GET", NULL, ctl_page_query, &out, "/pki/signing-policies");
}

int ctl_policy_get(ctl_ctx *ctx, const ctl_args *a)
{
	return ctl_request(ctx, a, "GET", NULL, NULL, &ctl_fields_out, "/pki/signing-policies/%s",
			   a->pos[0]);
}

/* The policy's current constraints; -1 where there is none. */
typedef struct {
	long long max_signings;
	long long max_window;
} constraints;

static int take_constraints(const cJSON *body, void *arg)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(body, "constraints");
	constraints *out = arg;

	if (rs_json_int(c, "maxSignings", 0, 0, CTL_INT_MAX, &out->max_signings) != RS_JSON_OK ||
	    rs_json_int(c, "maxWindowDuration", 0, 0, CTL_INT_MAX, &out->max_window) !=
		    RS_JSON_OK) {
		fprintf(stderr, "rsignctl: the policy's constraints are malformed\n");
		return CTL_EXIT_SERVER;
	}
	return CTL_EXIT_OK;
}

/* The server takes constraints as a whole; changing one constraint keeps
 * the other as it is. */
static int keep_constraints(ctl_ctx *ctx, const ctl_args *a, cJSON *req)
{
	const int signings = ctl_arg(a, "max-signings") != NULL;
	const int window = ctl_arg(a, "max-window") != NULL;
	constraints now = {-1, -1};
	cJSON *c = cJSON_GetObjectItemCaseSensitive(req, "constraints");
	rs_buf path;
	int rc;

	if (signings == window)
		return CTL_EXIT_OK;
	rs_buf_init(&path, CTL_HTTP_MAX_PATH);
	rc = ctl_http_pathf(ctx->http, &path, "/pki/signing-policies/%s", a->pos[0]);
	if (rc == CTL_EXIT_OK)
		rc = ctl_http_call(ctx->http, "GET", rs_buf_str(&path), NULL, take_constraints,
				   &now);
	rs_buf_free(&path);
	if (rc != CTL_EXIT_OK)
		return rc;
	if ((!signings && now.max_signings >= 0 &&
	     !cJSON_AddNumberToObject(c, "maxSignings", (double)now.max_signings)) ||
	    (!window && now.max_window >= 0 &&
	     !cJSON_AddNumberToObject(c, "maxWindowDuration", (double)now.max_window))) {
		fprintf(stderr, "rsignctl: out of memory\n");
		return CTL_EXIT_SOFTWARE;
	}
	return CTL_EXIT_OK;
}

int ctl_policy_update(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_field bypass[] = {
		{"bypass-identities", "bypassForMachineIdentities", CTL_F_TRUE, NULL, NULL},
		{"no-bypass-identities", "bypassForMachineIdentities", CTL_F_FALSE, NULL, NULL},
		{"no-bypass-claims", "bypassClaims", CTL_F_NULL, NULL, NULL},
		CTL_FIELDS_END,
	};
	cJSON *req = NULL;
	int rc;

	rc = ctl_exclusive(a, "bypass-identities", "no-bypass-identities");
	if (rc == CTL_EXIT_OK)
		rc = ctl_exclusive(a, "bypass-claim", "no-bypass-claims");
	if (rc != CTL_EXIT_OK)
		return rc;
	if (!ctl_any_option(a))
		return ctl_usage_error(a, "nothing to change");
	if (ctl_arg(a, "required") && ctl_arg_int(a, "required") < 1)
		return ctl_usage_error(a, "--required must be at least 1");
	rc = ctl_body(ctx, a, policy_map, &req);
	if (rc == CTL_EXIT_OK)
		rc = ctl_body(ctx, a, bypass, &req);
	if (rc == CTL_EXIT_OK)
		rc = bypass_claims(a, req);
	if (rc == CTL_EXIT_OK)
		rc = keep_constraints(ctx, a, req);
	if (rc == CTL_EXIT_OK)
		rc = ctl_request(ctx, a, "PATCH", req, NULL, &ctl_fields_out,
				 "/pki/signing-policies/%s", a->pos[0]);
	cJSON_Delete(req);
	return rc;
}

int ctl_policy_delete(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_out out = {ctl_out_fields, "policy deleted", 0};

	return ctl_request(ctx, a, "DELETE", NULL, NULL, &out, "/pki/signing-policies/%s",
			   a->pos[0]);
}

/* ---- requests --------------------------------------------------------- */

/* A request's fields and, as consoleUrl, its page in the web console
 * (url + /requests/{id}): the link to paste into chat. arg: the base URL. */
static int out_request(const cJSON *body, const void *arg)
{
	const char *url = arg;
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(body, "id");
	if (!url || !cJSON_IsObject(body) || !cJSON_IsString(id))
		return ctl_out_fields(body, NULL);
	size_t n = strlen(url);
	while (n && url[n - 1] == '/')
		n--;
	size_t len = n + strlen("/requests/") + strlen(id->valuestring) + 1;
	char *link = malloc(len);
	cJSON *copy = cJSON_Duplicate(body, 1);
	int rc;
	if (link && copy) {
		snprintf(link, len, "%.*s/requests/%s", (int)n, url, id->valuestring);
		cJSON_AddStringToObject(copy, "consoleUrl", link);
		rc = ctl_out_fields(copy, NULL);
	} else {
		fprintf(stderr, "rsignctl: out of memory\n");
		rc = CTL_EXIT_SOFTWARE;
	}
	free(link);
	cJSON_Delete(copy);
	return rc;
}

int ctl_request_create(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_field map[] = {
		{"justification", "justification", CTL_F_STR, NULL, NULL},
		{"signings", "requestedSignings", CTL_F_INT, NULL, NULL},
		{"window", "requestedWindowDuration", CTL_F_INT, NULL, NULL},
		CTL_FIELDS_END,
	};

	const ctl_out out = {out_request, ctx->url, 0};

	return ctl_send(ctx, a, "POST", map, &out, "/pki/signers/%s/requests", a->pos[0]);
}

int ctl_request_list(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_query query[] = {
		{"signer", "signerId", NULL, "/pki/signers"},
		{"status", "status", NULL, NULL},
		{"offset", "offset", NULL, NULL},
		{"limit", "limit", NULL, NULL},
		CTL_QUERY_END,
	};
	static const ctl_column cols[] = {
		{"id", "ID"},
		{"status", "STATUS"},
		{"signerId", "SIGNER"},
		{"requesterId", "REQUESTER"},
		{"requestedSignings", "SIGNINGS"},
		{"createdAt", "CREATED"},
		{"justification", "JUSTIFICATION"},
		CTL_COLUMNS_END,
	};
	static const ctl_out out = {ctl_out_table, cols, 0};

	return ctl_request(ctx, a, "GET", NULL, query, &out, "/pki/signing-requests");
}

static const ctl_field comment_map[] = {
	{"comment", "comment", CTL_F_STR, NULL, NULL},
	CTL_FIELDS_END,
};

int ctl_request_approve(ctl_ctx *ctx, const ctl_args *a)
{
	const ctl_out out = {out_request, ctx->url, 0};

	return ctl_send(ctx, a, "POST", comment_map, &out, "/pki/signing-requests/%s/approve",
			a->pos[0]);
}

int ctl_request_reject(ctl_ctx *ctx, const ctl_args *a)
{
	const ctl_out out = {out_request, ctx->url, 0};

	return ctl_send(ctx, a, "POST", comment_map, &out, "/pki/signing-requests/%s/reject",
			a->pos[0]);
}

int ctl_request_cancel(ctl_ctx *ctx, const ctl_args *a)
{
	const ctl_out out = {out_request, ctx->url, 0};

	return ctl_send(ctx, a, "POST", comment_map, &out, "/pki/signing-requests/%s/cancel",
			a->pos[0]);
}

/* ---- grants and audit ------------------------------------------------- */

int ctl_grant_list(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_query query[] = {
		{"signer", "signerId", NULL, "/pki/signers"},
		{"status", "status", NULL, NULL},
		{"offset", "offset", NULL, NULL},
		{"limit", "limit", NULL, NULL},
		CTL_QUERY_END,
	};
	static const ctl_column cols[] = {
		{"id", "ID"},
		{"status", "STATUS"},
		{"signerId", "SIGNER"},
		{"granteeId", "GRANTEE"},
		{"usedSignings", "USED"},
		{"maxSignings", "MAX"},
		{"expiresAt", "EXPIRES"},
		CTL_COLUMNS_END,
	};
	static const ctl_out out = {ctl_out_table, cols, 0};

	return ctl_request(ctx, a, "GET", NULL, query, &out, "/pki/grants");
}

int ctl_grant_revoke(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_field none[] = {CTL_FIELDS_END};
	static const ctl_out out = {ctl_out_fields, "grant revoked", 0};

	return ctl_send(ctx, a, "POST", none, &out, "/pki/grants/%s/revoke", a->pos[0]);
}

int ctl_audit(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_query query[] = {
		{"action", "action", NULL, NULL},
		{"actor", "actor", NULL, NULL},
		{"since", "from", NULL, NULL},
		{"until", "to", NULL, NULL},
		{"offset", "offset", NULL, NULL},
		{"limit", "limit", NULL, NULL},
		CTL_QUERY_END,
	};
	/* No columns: the audit entry's shape is not fixed yet. */
	static const ctl_out out = {ctl_out_table, NULL, 0};

	return ctl_request(ctx, a, "GET", NULL, query, &out, "/audit-log");
}

/* ---- the tamper-evident log ------------------------------------------- */

/* One line per chain; CTL_EXIT_SERVER (1) when a chain is bad. print 0:
 * the exit code only (--json printed the body). */
static int verify_result(const cJSON *body, int print)
{
	const cJSON *chains = cJSON_GetObjectItemCaseSensitive(body, "chains"), *c;
	int bad = !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "ok"));

	cJSON_ArrayForEach (c, chains) {
		const cJSON *fb = cJSON_GetObjectItemCaseSensitive(c, "firstBad");
		const char *name =
			cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "chain"));
		double recs = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(c, "records"));
		double tombs =
			cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(c, "tombstones"));
		double cps =
			cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(c, "checkpoints"));
		if (!print)
			continue;
		if (!fb) {
			printf("%s: ok (%.0f records, %.0f tombstones, %.0f checkpoints)\n",
			       name ? name : "?", recs, tombs, cps);
			continue;
		}
		const char *what =
			cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(fb, "what"));
		const char *id =
			cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(fb, "recordId"));
		const char *why =
			cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(fb, "detail"));
		double seq = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(fb, "seq"));
		printf("%s: BAD: %s at seq %.0f, record %s: %s\n", name ? name : "?",
		       what ? what : "?", seq, id && *id ? id : "-", why ? why : "");
	}
	return bad ? CTL_EXIT_SERVER : CTL_EXIT_OK;
}

static int verify_print(const cJSON *body, const void *arg)
{
	(void)arg;
	return verify_result(body, 1);
}

static int verify_exit(const cJSON *body, const void *arg)
{
	(void)arg;
	return verify_result(body, 0);
}

int ctl_verify_log(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_query query[] = {{"chain", "chain", NULL, NULL}, CTL_QUERY_END};
	static const ctl_out out = {verify_print, NULL, 0};
	static const ctl_out out_json = {verify_exit, NULL, 1};

	return ctl_request(ctx, a, "GET", NULL, query, ctx->json ? &out_json : &out, "/log/verify");
}
