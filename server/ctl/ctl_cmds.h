/* rsignctl's commands: the option and command types the dispatch table in
 * rsignctl.c is made of, the helpers the command files share, and one
 * function per command (ctl_cmds.c, ctl_pki.c, ctl_policy.c, ctl_tsa.c). */
#ifndef RSIGN_CTL_CMDS_H
#define RSIGN_CTL_CMDS_H
#include <stddef.h>
#include <cjson/cJSON.h>
#include "rsign/buf.h"
#include "server/ctl/ctl_http.h"

typedef enum {
	CTL_OPT_FLAG, /* no value; present or not */
	CTL_OPT_STR,
	CTL_OPT_INT,  /* decimal in [0, CTL_INT_MAX], checked by the parser */
	CTL_OPT_LIST, /* repeatable string */
} ctl_opt_kind;

#define CTL_INT_MAX 2147483647LL
#define CTL_MAX_OPTS 16
#define CTL_MAX_POS 2
#define CTL_MAX_LIST 32

typedef struct {
	const char *name; /* without the leading "--" */
	ctl_opt_kind kind;
	const char *meta; /* value placeholder for help; NULL for flags */
	const char *help;
	int required;
	const char *const *choices; /* NULL-terminated allowed values, or NULL */
} ctl_opt;

typedef struct ctl_ctx ctl_ctx;
typedef struct ctl_args ctl_args;

typedef struct {
	const char *words;    /* "signer member add" */
	const char *synopsis; /* positional arguments for help: "ID" */
	int npos;	      /* exactly this many positional arguments */
	int auth;	      /* sends the token; rsignctl needs one configured */
	int (*run)(ctl_ctx *ctx, const ctl_args *a);
	const ctl_opt *opts; /* NULL, or ends with a NULL name */
	const char *summary;
} ctl_cmd;

struct ctl_args {
	const ctl_cmd *cmd;
	const char *pos[CTL_MAX_POS];
	const char *val[CTL_MAX_OPTS];	/* by index in cmd->opts; "1" for flags */
	const char *list[CTL_MAX_LIST]; /* the values of the LIST options ... */
	int list_opt[CTL_MAX_LIST];	/* ... each with its option's index */
	int nlist;
};

struct ctl_ctx {
	ctl_http *http;
	int json;	 /* --json: print the server's response, pretty-printed */
	const char *url; /* the server's base URL (its web console's too) */
};

/* ---- in rsignctl.c ---- */
/* Prints "rsignctl: <message>" and the command's usage on stderr; returns
 * CTL_EXIT_USAGE. */
int ctl_usage_error(const ctl_args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- shared helpers, in ctl_cmds.c ---- */
/* The value of option name ("1" for a set flag), NULL when not given. */
const char *ctl_arg(const ctl_args *a, const char *name);
/* The value of an INT option as a number; 0 when not given. */
long long ctl_arg_int(const ctl_args *a, const char *name);
/* Fails with a usage error when both options are given. */
int ctl_exclusive(const ctl_args *a, const char *x, const char *y);
/* How many values LIST option name was given. */
int ctl_list_count(const ctl_args *a, const char *name);
/* Each CLAIM=PATTERN value of LIST option name added to the object o
 * (a boundClaims or bypassClaims); an exit code. */
int ctl_claim_patterns(const ctl_args *a, const char *name, cJSON *o);

/* What to do with a 2xx body. With --json the body is printed instead of
 * calling fn, unless always is set (then fn runs after it, e.g. to write a
 * file, and must not print). body may be NULL (an empty response). */
typedef struct {
	int (*fn)(const cJSON *body, const void *arg);
	const void *arg;
	int always;
} ctl_out;

typedef struct {
	const char *key;    /* field of each row object */
	const char *header; /* column title */
} ctl_column;

/* "key: value" lines, multi-line strings left out; msg (may be NULL) is
 * printed instead when the body is empty. */
int ctl_out_fields(const cJSON *body, const void *msg);
/* As ctl_out_fields, with the keys in once (const char *const[]) labelled
 * as shown once and a reminder on stderr. */
int ctl_out_secret_fields(const cJSON *body, const void *once);
/* An aligned table of the body's array (the body itself, or its first array
 * member); columns ends with a NULL key; NULL picks the first row's scalar
 * fields. */
int ctl_out_table(const cJSON *body, const void *columns);
/* The string fields in keys (const char *const[], NULL-terminated), as is. */
int ctl_out_pem(const cJSON *body, const void *keys);
/* One string field (const char *key) and a newline. */
int ctl_out_string(const cJSON *body, const void *key);

/* Shows the body as "key: value" lines: what most commands print. */
extern const ctl_out ctl_fields_out;

/* Terminators of the tables below. */
#define CTL_COLUMNS_END                                                                            \
	{                                                                                          \
		NULL, NULL                                                                         \
	}
#define CTL_QUERY_END                                                                              \
	{                                                                                          \
		NULL, NULL, NULL, NULL                                                             \
	}
#define CTL_FIELDS_END                                                                             \
	{                                                                                          \
		NULL, NULL, 0, NULL, NULL                                                          \
	}

/* Query parameters taken from options; ends with a NULL opt. */
typedef struct {
	const char *opt;
	const char *param;
	const char *value;   /* for a flag: the value to send */
	const char *resolve; /* collection whose names this option may use */
} ctl_query;

/* The --offset and --limit options of every list command (PAGE). */
extern const ctl_query ctl_page_query[];

/* JSON body fields taken from options; ends with a NULL opt. */
typedef enum {
	CTL_F_STR,   /* the option's value */
	CTL_F_INT,   /* the option's value as a number */
	CTL_F_CONST, /* flag set: the string in value */
	CTL_F_TRUE,  /* flag set: true */
	CTL_F_FALSE, /* flag set: false */
	CTL_F_FLAG,  /* always sent: true when set, else false */
	CTL_F_NULL,  /* flag set: null */
	CTL_F_LIST,  /* the LIST option's values as an array of strings */
} ctl_field_kind;

typedef struct {
	const char *opt;
	const char *field; /* "constraints.maxSignings" nests one level */
	ctl_field_kind kind;
	const char *value;   /* CTL_F_CONST */
	const char *resolve; /* collection whose names this option may use */
} ctl_field;

/* Adds the options in map to the object *out (created when NULL), resolving
 * names to ids. The caller frees *out, also on failure; the reason is
 * printed. Returns an exit code. */
int ctl_body(ctl_ctx *ctx, const ctl_args *a, const ctl_field *map, cJSON **out)
	__attribute__((warn_unused_result));

/* An id stays as it is; a name is looked up as collection/name and replaced
 * by the object's id. Returns an exit code. */
#define CTL_ID_MAX 128
int ctl_resolve(ctl_ctx *ctx, const char *collection, const char *value, char out[CTL_ID_MAX])
	__attribute__((warn_unused_result));

/* Formats the path (arguments URL-encoded), appends query (may be NULL),
 * sends method with req (may be NULL) and shows the answer: the JSON with
 * --json, else out (may be NULL: nothing). Returns an exit code. */
int ctl_request(ctl_ctx *ctx, const ctl_args *a, const char *method, const cJSON *req,
		const ctl_query *query, const ctl_out *out, const char *fmt, ...)
	__attribute__((format(printf, 7, 8), warn_unused_result));

/* As ctl_request with the body built by ctl_body from map (a POST with an
 * empty map sends {}). */
int ctl_send(ctl_ctx *ctx, const ctl_args *a, const char *method, const ctl_field *map,
	     const ctl_out *out, const char *fmt, ...)
	__attribute__((format(printf, 6, 7), warn_unused_result));

/* True when any of the command's options was given. */
int ctl_any_option(const ctl_args *a);

/* Initialises b with max and reads a whole file (or stdin for "-") into it.
 * Prints the reason and returns an exit code; b needs freeing either way. */
int ctl_read_file(const char *path, size_t max, rs_buf *b) __attribute__((warn_unused_result));

/* ---- commands ---- */
int ctl_health(ctl_ctx *ctx, const ctl_args *a);
int ctl_backup(ctl_ctx *ctx, const ctl_args *a);
int ctl_whoami(ctl_ctx *ctx, const ctl_args *a);
int ctl_login(ctl_ctx *ctx, const ctl_args *a);
int ctl_principal_create(ctl_ctx *ctx, const ctl_args *a);
int ctl_principal_oidc(ctl_ctx *ctx, const ctl_args *a);
int ctl_principal_list(ctl_ctx *ctx, const ctl_args *a);
int ctl_principal_get(ctl_ctx *ctx, const ctl_args *a);
int ctl_principal_delete(ctl_ctx *ctx, const ctl_args *a);
int ctl_principal_disable(ctl_ctx *ctx, const ctl_args *a);
int ctl_principal_enable(ctl_ctx *ctx, const ctl_args *a);
int ctl_principal_token(ctl_ctx *ctx, const ctl_args *a);
int ctl_token_list(ctl_ctx *ctx, const ctl_args *a);
int ctl_token_create(ctl_ctx *ctx, const ctl_args *a);
int ctl_token_revoke(ctl_ctx *ctx, const ctl_args *a);
int ctl_principal_rotate_secret(ctl_ctx *ctx, const ctl_args *a);
int ctl_principal_secrets(ctl_ctx *ctx, const ctl_args *a);

int ctl_tsa_create(ctl_ctx *ctx, const ctl_args *a);
int ctl_tsa_list(ctl_ctx *ctx, const ctl_args *a);
int ctl_tsa_get(ctl_ctx *ctx, const ctl_args *a);
int ctl_tsa_update(ctl_ctx *ctx, const ctl_args *a);
int ctl_tsa_delete(ctl_ctx *ctx, const ctl_args *a);
int ctl_tsa_operations(ctl_ctx *ctx, const ctl_args *a);

int ctl_key_create(ctl_ctx *ctx, const ctl_args *a);
int ctl_key_list(ctl_ctx *ctx, const ctl_args *a);
int ctl_key_get(ctl_ctx *ctx, const ctl_args *a);
int ctl_key_csr(ctl_ctx *ctx, const ctl_args *a);
int ctl_cert_import(ctl_ctx *ctx, const ctl_args *a);
int ctl_cert_issue(ctl_ctx *ctx, const ctl_args *a);
int ctl_cert_list(ctl_ctx *ctx, const ctl_args *a);
int ctl_cert_get(ctl_ctx *ctx, const ctl_args *a);
int ctl_ca(ctl_ctx *ctx, const ctl_args *a);
int ctl_signer_create(ctl_ctx *ctx, const ctl_args *a);
int ctl_signer_list(ctl_ctx *ctx, const ctl_args *a);
int ctl_signer_get(ctl_ctx *ctx, const ctl_args *a);
int ctl_signer_update(ctl_ctx *ctx, const ctl_args *a);
int ctl_signer_delete(ctl_ctx *ctx, const ctl_args *a);
int ctl_signer_public_key(ctl_ctx *ctx, const ctl_args *a);
int ctl_signer_cert(ctl_ctx *ctx, const ctl_args *a);
int ctl_member_add(ctl_ctx *ctx, const ctl_args *a);
int ctl_member_remove(ctl_ctx *ctx, const ctl_args *a);
int ctl_member_list(ctl_ctx *ctx, const ctl_args *a);
int ctl_sign(ctl_ctx *ctx, const ctl_args *a);
int ctl_history(ctl_ctx *ctx, const ctl_args *a);

int ctl_policy_create(ctl_ctx *ctx, const ctl_args *a);
int ctl_policy_list(ctl_ctx *ctx, const ctl_args *a);
int ctl_policy_get(ctl_ctx *ctx, const ctl_args *a);
int ctl_policy_update(ctl_ctx *ctx, const ctl_args *a);
int ctl_policy_delete(ctl_ctx *ctx, const ctl_args *a);
int ctl_request_create(ctl_ctx *ctx, const ctl_args *a);
int ctl_request_list(ctl_ctx *ctx, const ctl_args *a);
int ctl_request_approve(ctl_ctx *ctx, const ctl_args *a);
int ctl_request_reject(ctl_ctx *ctx, const ctl_args *a);
int ctl_request_cancel(ctl_ctx *ctx, const ctl_args *a);
int ctl_grant_list(ctl_ctx *ctx, const ctl_args *a);
int ctl_grant_revoke(ctl_ctx *ctx, const ctl_args *a);
int ctl_audit(ctl_ctx *ctx, const ctl_args *a);
int ctl_verify_log(ctl_ctx *ctx, const ctl_args *a);

#endif
