/* rsignctl: the admin CLI over rsignd's HTTP API. Here: main, the global
 * options, the dispatch table with every command's options, the argument
 * parser and the help texts. Configuration is ctl_conf.c; the commands live
 * in ctl_cmds.c, ctl_pki.c and ctl_policy.c. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "server/ctl/ctl_cmds.h"
#include "server/ctl/ctl_conf.h"
#include "server/ctl/ctl_http.h"

#define HELP_COL 26

/* ---- the dispatch table ------------------------------------------------ */

static const char *const cert_profiles[] = {"codeSigning", "tsa", NULL};
static const char *const key_algs[] = {"RSA_2048", "RSA_3072", "RSA_4096", "EC_P256",
				       "EC_P384",  "EC_P521",  NULL};
static const char *const principal_types[] = {"user", "identity", NULL};
static const char *const roles[] = {"operator", "auditor", NULL};
static const char *const op_statuses[] = {"success", "denied", "failed", NULL};
static const char *const grant_statuses[] = {"active", "expired", "revoked", NULL};
static const char *const chains[] = {"history", "audit", NULL};
static const char *const signer_statuses[] = {"enabled", "disabled", "retired", "any", NULL};

#define FLAG(n, h)                                                                                 \
	{                                                                                          \
		n, CTL_OPT_FLAG, NULL, h, 0, NULL                                                  \
	}
#define STR(n, m, h)                                                                               \
	{                                                                                          \
		n, CTL_OPT_STR, m, h, 0, NULL                                                      \
	}
#define STR_REQ(n, m, h)                                                                           \
	{                                                                                          \
		n, CTL_OPT_STR, m, h, 1, NULL                                                      \
	}
#define INT(n, m, h)                                                                               \
	{                                                                                          \
		n, CTL_OPT_INT, m, h, 0, NULL                                                      \
	}
#define PAGE                                                                                       \
	INT("offset", "N", "skip the first N entries"),                                            \
		INT("limit", "N", "show at most N entries (1..100)")
#define END                                                                                        \
	{                                                                                          \
		NULL, 0, NULL, NULL, 0, NULL                                                       \
	}

/* an identity's OIDC login (principal create, principal oidc) */
#define OIDC_OPTS                                                                                   \
	STR("oidc-issuer", "URL", "identity: log in with JWTs of this OIDC issuer (https)"),        \
		STR("oidc-jwks-url", "URL", "the issuer's key set (https)"),                        \
		STR("oidc-jwks-file", "PATH", "the issuer's key set, kept inline (JSON file)"),     \
		{"audience", CTL_OPT_LIST, "AUD", "an accepted aud (repeat for several)", 0, NULL}, \
		STR("bound-subject", "PATTERN", "the sub the token must have (* globs)"),           \
		{"bound-claim",                                                                     \
		 CTL_OPT_LIST,                                                                      \
		 "CLAIM=PATTERN",                                                                   \
		 "a claim (dot path) the token must match (repeat)",                                \
		 0,                                                                                 \
		 NULL},                                                                             \
		{"record-claim",                                                                    \
		 CTL_OPT_LIST,                                                                      \
		 "CLAIM",                                                                           \
		 "a claim recorded in the history (repeat; default: the CI ones)",                  \
		 0,                                                                                 \
		 NULL},                                                                             \
		INT("clock-skew", "SECONDS", "leeway for exp, nbf, iat (default 60)")

static const ctl_opt opts_login[] = {STR_REQ("client-id", "ID",
					     "machine identity's client id; the secret comes from "
					     "$RSIGN_CLIENT_SECRET or stdin"),
				     END};
static const ctl_opt opts_principal_create[] = {
	{"type", CTL_OPT_STR, "TYPE",
	 "user (gets an API token) or identity (gets a "
	 "clientId/clientSecret)",
	 1, principal_types},
	STR_REQ("name", "NAME", "principal name"),
	FLAG("admin", "make the principal a server-wide admin"),
	FLAG("metrics", "let the principal read GET /metrics (a Prometheus scraper)"),
	OIDC_OPTS,
	END};
static const ctl_opt opts_principal_oidc[] = {FLAG("remove", "remove the identity's OIDC login"),
					      OIDC_OPTS, END};
static const ctl_opt opts_backup[] = {
	STR_REQ("out", "FILE", "the new file to write (refused when it exists)"), END};
static const ctl_opt opts_token_create[] = {
	STR("name", "NAME", "a name for the token (at most 64 bytes)"),
	INT("expires-in", "SECONDS", "the token stops working after SECONDS"),
	STR("expires-at", "TIME", "the token stops working at TIME (RFC 3339)"), END};
static const ctl_opt opts_rotate_secret[] = {
	INT("overlap", "SECONDS",
	    "the current secret keeps working for SECONDS (default 0: revoked at once)"),
	END};
static const ctl_opt opts_key_create[] = {STR_REQ("name", "NAME", "key name"),
					  {"alg", CTL_OPT_STR, "ALG",
					   "RSA_2048 RSA_3072 RSA_4096 EC_P256 EC_P384 EC_P521", 1,
					   key_algs},
					  END};
static const ctl_opt opts_key_csr[] = {
	STR_REQ("subject", "DN", "subject, e.g. \"/CN=Example Code Signing/O=Example\""), END};
static const ctl_opt opts_cert_import[] = {
	STR_REQ("cert", "FILE", "PEM certificate with the codeSigning EKU"),
	STR("chain", "FILE", "PEM chain (intermediates) to serve with it"), END};
static const ctl_opt opts_cert_issue[] = {
	STR_REQ("key", "KEY", "key id or name"),
	STR_REQ("cn", "NAME", "subject common name"),
	INT("days", "N", "validity in days (default 365)"),
	STR("not-before", "TIME", "RFC 3339 start, overrides --days (admins may back-date)"),
	STR("not-after", "TIME", "RFC 3339 end, overrides --days"),
	{"profile", CTL_OPT_STR, "P",
	 "codeSigning (default) or tsa (critical extended key usage timeStamping only)", 0,
	 cert_profiles},
	END};
static const ctl_opt opts_tsa_create[] = {
	STR_REQ("name", "NAME", "slug: lower-case letters, digits and '-'"),
	STR_REQ("cert", "ID", "certificate id (critical extended key usage timeStamping only)"),
	STR_REQ("policy-oid", "OID", "the TSA policy its timestamps name, dotted decimal"),
	INT("accuracy", "SECONDS", "accuracy the timestamps state (default 1; 0: none)"),
	FLAG("require-auth", "POST /tsa/NAME needs a bearer token"),
	END};
static const ctl_opt opts_tsa_update[] = {
	STR("name", "NAME", "new name"),
	STR("cert", "ID", "switch to another certificate"),
	STR("policy-oid", "OID", "new TSA policy"),
	INT("accuracy", "SECONDS", "new accuracy"),
	FLAG("require-auth", "POST /tsa/NAME needs a bearer token"),
	FLAG("no-require-auth", "POST /tsa/NAME needs no token"),
	END};
static const ctl_opt opts_pem[] = {FLAG("pem", "print the PEM instead of the fields"), END};
static const ctl_opt opts_signer_create[] = {
	STR_REQ("name", "NAME", "slug: lower-case letters, digits and '-'"),
	STR_REQ("cert", "ID", "certificate id"), STR("description", "TEXT", "free text"),
	STR("policy", "ID", "signing policy id (default: sign without approval)"), END};
static const ctl_opt opts_signer_list[] = {
	STR("search", "TEXT", "only signers whose name contains TEXT"),
	FLAG("can-sign", "only signers the caller may sign with"),
	{"status", CTL_OPT_STR, "S",
	 "enabled, disabled, retired or any (default: the live ones, enabled and disabled)", 0,
	 signer_statuses},
	PAGE,
	END};
static const ctl_opt opts_signer_update[] = {STR("description", "TEXT", "new description"),
					     FLAG("enable", "allow signing"),
					     FLAG("disable", "refuse signing"),
					     STR("cert", "ID", "switch to another certificate"),
					     STR("policy", "ID", "attach a signing policy"),
					     FLAG("no-policy", "detach the signing policy"),
					     END};
static const ctl_opt opts_member_add[] = {STR_REQ("principal", "P", "principal id or name"),
					  {"role", CTL_OPT_STR, "ROLE",
					   "operator (may sign and request approval) or auditor "
					   "(may read the signer and its history)",
					   1, roles},
					  END};
static const ctl_opt opts_member_remove[] = {STR_REQ("principal", "P", "principal id or name"),
					     END};
static const ctl_opt opts_sign[] = {
	STR_REQ("alg", "ALG",
		"RSASSA_PKCS1_V1_5_SHA256|384|512, RSASSA_PSS_SHA256|384|512, "
		"ECDSA_SHA256|384|512"),
	STR("digest", "HEX", "the digest to sign, in hex"),
	STR("digest-file", "FILE", "file holding the digest, raw or hex"),
	STR("file", "FILE", "data to sign ('-' for stdin); over 128 bytes it is hashed here"),
	INT("salt", "N", "PSS salt length (default: the hash length)"),
	STR("out", "FILE", "write the raw signature to FILE instead of printing base64"),
	STR("idempotency-key", "KEY",
	    "Idempotency-Key to send (default: a fresh UUID); the key of a run whose answer "
	    "was lost gets that signing back instead of a second one"),
	END};
/* the filters GET /pki/signers/{id}/operations and GET /audit-log share */
#define TIME_RANGE                                                                                 \
	STR("actor", "P", "only the attempts or changes of principal P (id or name)"),             \
		STR("since", "TIME", "from TIME on (RFC 3339, included)"),                         \
		STR("until", "TIME", "before TIME (RFC 3339, not included)")
static const ctl_opt opts_history[] = {
	{"status", CTL_OPT_STR, "S", "success, denied or failed", 0, op_statuses},
	STR("algorithm", "ALG", "only signatures with this signingAlgorithm"),
	TIME_RANGE,
	PAGE,
	END};
/* narrows --bypass-identities to OIDC logins (policy create, update) */
#define BYPASS_CLAIM                                                                               \
	{                                                                                          \
		"bypass-claim", CTL_OPT_LIST, "CLAIM=PATTERN",                                     \
			"bypass only for OIDC logins recording this claim (repeat; replaces all)", \
			0, NULL                                                                    \
	}
static const ctl_opt opts_policy_create[] = {
	STR_REQ("name", "NAME", "policy name"),
	{"approver", CTL_OPT_LIST, "P", "approving user, id or name (repeat for several)", 1, NULL},
	{"required", CTL_OPT_INT, "N", "approvals needed for a grant", 1, NULL},
	INT("max-signings", "N", "signatures one grant allows"),
	INT("max-window", "SECONDS", "how long one grant lasts"),
	INT("request-ttl", "SECONDS", "how long a request waits for approval"),
	FLAG("bypass-identities", "machine identities sign without approval"),
	BYPASS_CLAIM,
	END};
static const ctl_opt opts_policy_update[] = {
	STR("name", "NAME", "new name"),
	{"approver", CTL_OPT_LIST, "P", "replaces the approvers (repeat for several)", 0, NULL},
	INT("required", "N", "approvals needed for a grant"),
	INT("max-signings", "N", "signatures one grant allows"),
	INT("max-window", "SECONDS", "how long one grant lasts"),
	INT("request-ttl", "SECONDS", "how long a request waits for approval"),
	FLAG("bypass-identities", "machine identities sign without approval"),
	FLAG("no-bypass-identities", "machine identities need approval too"),
	BYPASS_CLAIM,
	FLAG("no-bypass-claims", "the bypass holds for every machine identity again"),
	END};
static const ctl_opt opts_request_create[] = {
	STR_REQ("justification", "TEXT", "why the signatures are needed"),
	INT("signings", "N", "signatures wanted (default: the policy's maximum)"),
	INT("window", "SECONDS", "how long the grant should last (default: the policy's)"), END};
static const ctl_opt opts_request_list[] = {STR("signer", "S", "signer id or name"),
					    STR("status", "S", "e.g. pending"), PAGE, END};
static const ctl_opt opts_comment[] = {STR("comment", "TEXT", "note kept with the decision"), END};
static const ctl_opt opts_grant_list[] = {
	STR("signer", "S", "signer id or name"),
	{"status", CTL_OPT_STR, "S", "active, expired or revoked", 0, grant_statuses},
	PAGE,
	END};
static const ctl_opt opts_audit[] = {
	STR("action", "A", "only entries of this action, e.g. policy.create"), TIME_RANGE, PAGE,
	END};
static const ctl_opt opts_verify_log[] = {
	{"chain", CTL_OPT_STR, "C", "history or audit (default: both)", 0, chains}, END};
static const ctl_opt opts_page[] = {PAGE, END};

#define C(w, syn, n, auth, fn, opts, sum)                                                          \
	{                                                                                          \
		w, syn, n, auth, fn, opts, sum                                                     \
	}

static const ctl_cmd commands[] = {
	C("health", "", 0, 0, ctl_health, NULL,
	  "check that the server, its token and its database answer (GET /ready)"),
	C("whoami", "", 0, 1, ctl_whoami, NULL, "show the principal the token belongs to"),
	C("backup", "", 0, 1, ctl_backup, opts_backup,
	  "copy the server's SQLite database while it serves (admins; GET /backup)"),
	C("login", "", 0, 0, ctl_login, opts_login,
	  "exchange a clientId/clientSecret for an access token (prints it)"),
	C("principal create", "", 0, 1, ctl_principal_create, opts_principal_create,
	  "create a user or machine identity (its secret is shown once)"),
	C("principal list", "", 0, 1, ctl_principal_list, opts_page, "list principals"),
	C("principal oidc", "ID", 1, 1, ctl_principal_oidc, opts_principal_oidc,
	  "set (or --remove) a machine identity's OIDC login"),
	C("principal get", "ID", 1, 1, ctl_principal_get, NULL, "show a principal (id or name)"),
	C("principal delete", "ID", 1, 1, ctl_principal_delete, NULL, "delete a principal"),
	C("principal disable", "ID", 1, 1, ctl_principal_disable, NULL,
	  "refuse the principal's tokens and logins until enabled again"),
	C("principal enable", "ID", 1, 1, ctl_principal_enable, NULL,
	  "accept a disabled principal's tokens and logins again"),
	C("principal token", "ID", 1, 1, ctl_principal_token, NULL,
	  "issue another API token for a user (shown once)"),
	C("principal rotate-secret", "ID", 1, 1, ctl_principal_rotate_secret, opts_rotate_secret,
	  "give a machine identity a new client secret (shown once)"),
	C("principal secrets", "ID", 1, 1, ctl_principal_secrets, NULL,
	  "list a machine identity's client secrets (never their values)"),
	C("token list", "PRINCIPAL", 1, 1, ctl_token_list, opts_page,
	  "list a principal's tokens (never their values)"),
	C("token create", "PRINCIPAL", 1, 1, ctl_token_create, opts_token_create,
	  "issue an API token for a user, optionally named and expiring (shown once)"),
	C("token revoke", "PRINCIPAL TOKEN-ID", 2, 1, ctl_token_revoke, NULL,
	  "revoke one token: it stops working at once"),
	C("key create", "", 0, 1, ctl_key_create, opts_key_create,
	  "generate a key pair inside the HSM"),
	C("key list", "", 0, 1, ctl_key_list, opts_page, "list keys"),
	C("key get", "ID", 1, 1, ctl_key_get, NULL, "show a key (id or name)"),
	C("key csr", "ID", 1, 1, ctl_key_csr, opts_key_csr, "print a CSR signed by the key"),
	C("cert import", "", 0, 1, ctl_cert_import, opts_cert_import,
	  "import a certificate for a key in the HSM"),
	C("cert issue", "", 0, 1, ctl_cert_issue, opts_cert_issue,
	  "issue a code-signing (or --profile tsa) certificate from the built-in CA"),
	C("tsa create", "", 0, 1, ctl_tsa_create, opts_tsa_create,
	  "create an RFC 3161 time-stamp authority"),
	C("tsa list", "", 0, 1, ctl_tsa_list, opts_page, "list time-stamp authorities"),
	C("tsa get", "ID", 1, 1, ctl_tsa_get, NULL, "show a time-stamp authority"),
	C("tsa update", "ID", 1, 1, ctl_tsa_update, opts_tsa_update,
	  "change a time-stamp authority; only the given fields are sent"),
	C("tsa delete", "ID", 1, 1, ctl_tsa_delete, NULL,
	  "delete a time-stamp authority (its timestamps stay recorded)"),
	C("tsa operations", "ID", 1, 1, ctl_tsa_operations, opts_page,
	  "list the timestamps a time-stamp authority issued, newest first"),
	C("cert list", "", 0, 1, ctl_cert_list, opts_page, "list certificates"),
	C("cert get", "ID", 1, 1, ctl_cert_get, opts_pem, "show a certificate"),
	C("ca", "", 0, 1, ctl_ca, NULL, "print the built-in CA certificate (PEM)"),
	C("signer create", "", 0, 1, ctl_signer_create, opts_signer_create, "create a signer"),
	C("signer list", "", 0, 1, ctl_signer_list, opts_signer_list,
	  "list the signers you may see"),
	C("signer get", "ID", 1, 1, ctl_signer_get, NULL, "show a signer (id or name)"),
	C("signer update", "ID", 1, 1, ctl_signer_update, opts_signer_update,
	  "change a signer; only the given fields are sent"),
	C("signer delete", "ID", 1, 1, ctl_signer_delete, NULL,
	  "retire a signer: it signs no more, frees its name, keeps its history"),
	C("signer public-key", "ID", 1, 1, ctl_signer_public_key, opts_pem,
	  "show the signer's public key"),
	C("signer cert", "ID", 1, 1, ctl_signer_cert, NULL,
	  "print the signer's certificate and chain (PEM)"),
	C("signer member add", "ID", 1, 1, ctl_member_add, opts_member_add,
	  "give a principal a role on the signer"),
	C("signer member remove", "ID", 1, 1, ctl_member_remove, opts_member_remove,
	  "take a principal's role away"),
	C("signer member list", "ID", 1, 1, ctl_member_list, NULL, "list the signer's members"),
	C("sign", "SIGNER", 1, 1, ctl_sign, opts_sign,
	  "sign a digest or a file; prints the base64 signature"),
	C("history", "SIGNER", 1, 1, ctl_history, opts_history,
	  "show the signer's signing history"),
	C("policy create", "", 0, 1, ctl_policy_create, opts_policy_create,
	  "create a signing policy (needs --max-signings and/or --max-window)"),
	C("policy list", "", 0, 1, ctl_policy_list, opts_page, "list signing policies"),
	C("policy get", "ID", 1, 1, ctl_policy_get, NULL, "show a signing policy"),
	C("policy update", "ID", 1, 1, ctl_policy_update, opts_policy_update,
	  "change a signing policy; only the given fields are sent"),
	C("policy delete", "ID", 1, 1, ctl_policy_delete, NULL, "delete a signing policy"),
	C("request create", "SIGNER", 1, 1, ctl_request_create, opts_request_create,
	  "ask for approval to sign"),
	C("request list", "", 0, 1, ctl_request_list, opts_request_list, "list signing requests"),
	C("request approve", "RID", 1, 1, ctl_request_approve, opts_comment, "approve a request"),
	C("request reject", "RID", 1, 1, ctl_request_reject, opts_comment, "reject a request"),
	C("request cancel", "RID", 1, 1, ctl_request_cancel, opts_comment,
	  "withdraw your own request"),
	C("grant list", "", 0, 1, ctl_grant_list, opts_grant_list, "list grants"),
	C("grant revoke", "GID", 1, 1, ctl_grant_revoke, NULL, "revoke a grant"),
	C("audit", "", 0, 1, ctl_audit, opts_audit, "show the audit log"),
	C("verify-log", "", 0, 1, ctl_verify_log, opts_verify_log,
	  "check the hash chains of the history and the audit log and their signed "
	  "checkpoints (exit 1 when a record was changed, removed, inserted or reordered)"),
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* ---- global options ----------------------------------------------------- */

typedef struct {
	const char *url;
	const char *ca_file;
	const char *config;
	int json, help, version;
} globals;

static const ctl_opt global_opts[] = {
	STR("url", "URL", "server base URL, https://host:port (else $RSIGN_URL)"),
	STR("ca-file", "FILE", "CA certificates to verify the server (else $RSIGN_CA_FILE)"),
	STR("config", "FILE",
	    "configuration file (else $RSIGN_CTL_CONF, else "
	    "~/.config/rsign/rsignctl.conf)"),
	FLAG("json", "print the server's JSON response"),
	FLAG("help", "show help"),
	FLAG("version", "show the version"),
	END};

/* ---- help ------------------------------------------------------------- */

static void print_opt(FILE *f, const ctl_opt *o)
{
	char left[64];
	int n;

	n = snprintf(left, sizeof(left), "  --%s%s%s", o->name, o->meta ? " " : "",
		     o->meta ? o->meta : "");
	if (n < 0)
		return;
	if (n < HELP_COL)
		fprintf(f, "%-*s%s\n", HELP_COL, left, o->help);
	else
		fprintf(f, "%s\n%-*s%s\n", left, HELP_COL, "", o->help);
}

static void print_synopsis(FILE *f, const ctl_cmd *c)
{
	const ctl_opt *o;
	int optional = 0;

	fprintf(f, "usage: rsignctl %s", c->words);
	if (*c->synopsis)
		fprintf(f, " %s", c->synopsis);
	for (o = c->opts; o && o->name; o++) {
		if (!o->required) {
			optional = 1;
			continue;
		}
		fprintf(f, " --%s %s", o->name, o->meta);
		if (o->kind == CTL_OPT_LIST)
			fprintf(f, " [--%s %s...]", o->name, o->meta);
	}
	fprintf(f, "%s\n", optional ? " [options]" : "");
}

static void print_global_help(FILE *f)
{
	const ctl_opt *o;

	fprintf(f, "\nglobal options:\n");
	for (o = global_opts; o->name; o++)
		print_opt(f, o);
}

static void print_cmd_help(FILE *f, const ctl_cmd *c)
{
	const ctl_opt *o;

	print_synopsis(f, c);
	fprintf(f, "\n%s.\n", c->summary);
	if (c->opts) {
		fprintf(f, "\noptions:\n");
		for (o = c->opts; o->name; o++)
			print_opt(f, o);
	}
	print_global_help(f);
}

/* True when c's words start with the n words in w. */
static int words_prefix(const ctl_cmd *c, char **w, int n)
{
	const char *p = c->words;
	size_t len;
	int i;

	for (i = 0; i < n; i++) {
		len = strlen(w[i]);
		if (strncmp(p, w[i], len) != 0 || (p[len] != ' ' && p[len] != '\0'))
			return 0;
		p += len;
		if (*p == ' ')
			p++;
		else if (i + 1 < n)
			return 0;
	}
	return 1;
}

static int count_words(const char *s)
{
	int n = 1;

	for (; *s; s++)
		n += *s == ' ';
	return n;
}

/* Lists the commands under the n words of w (all of them when n is 0). */
static void print_list_help(FILE *f, char **w, int n)
{
	size_t i;
	int k;

	fprintf(f, "usage: rsignctl [global options] ");
	for (k = 0; k < n; k++)
		fprintf(f, "%s ", w[k]);
	fprintf(f, "COMMAND [ARGS] [options]\n\ncommands:\n");
	for (i = 0; i < NCOMMANDS; i++) {
		char left[64];

		if (!words_prefix(&commands[i], w, n))
			continue;
		if (snprintf(left, sizeof(left), "  %s%s%s", commands[i].words,
			     *commands[i].synopsis ? " " : "", commands[i].synopsis) < 0)
			continue;
		fprintf(f, "%-*s%s\n", HELP_COL + 8, left, commands[i].summary);
	}
	fprintf(f, "\n'rsignctl COMMAND --help' shows a command's options.\n");
	print_global_help(f);
	if (n > 0)
		return;
	fprintf(f, "\nconfiguration (flags override the environment, which overrides the file):\n"
		   "  RSIGN_URL, RSIGN_CA_FILE, RSIGN_TOKEN; file keys url, ca_file, token_file\n"
		   "\nexit codes:\n"
		   "  0 success, 1 the server answered with an error, 2 transport failure,\n"
		   "  64 usage, 65 bad input data, 66 unreadable input, 70 internal error,\n"
		   "  73 cannot write output, 78 configuration\n");
}

static void short_usage(void)
{
	fprintf(stderr, "usage: rsignctl [global options] COMMAND [ARGS] [options]\n"
			"Try 'rsignctl --help'.\n");
}

int ctl_usage_error(const ctl_args *a, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "rsignctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	print_synopsis(stderr, a->cmd);
	fprintf(stderr, "Try 'rsignctl %s --help'.\n", a->cmd->words);
	return CTL_EXIT_USAGE;
}

/* ---- argument parsing ------------------------------------------------- */

static const ctl_opt *find_opt(const ctl_opt *opts, const char *name, size_t len)
{
	for (; opts && opts->name; opts++)
		if (strlen(opts->name) == len && strncmp(opts->name, name, len) == 0)
			return opts;
	return NULL;
}

/* Appends sep and s to the NUL-terminated buf, truncating. */
static void append_word(char *buf, size_t size, const char *sep, const char *s)
{
	size_t n = strlen(buf);

	if (n < size)
		snprintf(buf + n, size - n, "%s%s", sep, s);
}

static int check_value(const ctl_opt *o, const char *v, char *why, size_t whylen)
{
	const char *const *c;
	char *end;
	long long x;

	if (!*v) {
		snprintf(why, whylen, "--%s needs a non-empty value", o->name);
		return -1;
	}
	if (o->kind == CTL_OPT_INT) {
		errno = 0;
		x = strtoll(v, &end, 10);
		if (*v < '0' || *v > '9' || *end || errno || x > CTL_INT_MAX) {
			snprintf(why, whylen, "--%s needs a whole number from 0 to %lld", o->name,
				 CTL_INT_MAX);
			return -1;
		}
	}
	if (o->choices) {
		for (c = o->choices; *c; c++)
			if (strcmp(*c, v) == 0)
				return 0;
		snprintf(why, whylen, "--%s must be one of:", o->name);
		for (c = o->choices; *c; c++)
			append_word(why, whylen, " ", *c);
		return -1;
	}
	return 0;
}

static void set_global(globals *g, const ctl_opt *o, const char *v)
{
	if (strcmp(o->name, "url") == 0)
		g->url = v;
	else if (strcmp(o->name, "ca-file") == 0)
		g->ca_file = v;
	else if (strcmp(o->name, "config") == 0)
		g->config = v;
	else if (strcmp(o->name, "json") == 0)
		g->json = 1;
	else if (strcmp(o->name, "help") == 0)
		g->help = 1;
	else
		g->version = 1;
}

/* Parses argv[*i] as an option from opts (may be NULL) or the global ones.
 * Returns 1 when it was a command option (*which set), 0 when global, -1 on
 * error with why filled. */
static int parse_option(int argc, char **argv, int *i, const ctl_opt *opts, globals *g,
			const ctl_opt **which, const char **value, char *why, size_t whylen)
{
	const char *arg = argv[*i], *name, *eq, *v = NULL;
	const ctl_opt *o;
	size_t len;
	int is_global = 0;

	if (strcmp(arg, "-h") == 0) {
		g->help = 1;
		return 0;
	}
	if (strncmp(arg, "--", 2) != 0) {
		snprintf(why, whylen, "unknown option %s", arg);
		return -1;
	}
	name = arg + 2;
	eq = strchr(name, '=');
	len = eq ? (size_t)(eq - name) : strlen(name);
	o = find_opt(opts, name, len);
	if (!o) {
		o = find_opt(global_opts, name, len);
		is_global = 1;
	}
	if (!o) {
		snprintf(why, whylen, "unknown option --%.*s", (int)len, name);
		return -1;
	}
	if (o->kind == CTL_OPT_FLAG) {
		if (eq) {
			snprintf(why, whylen, "--%s takes no value", o->name);
			return -1;
		}
		v = "1";
	} else if (eq) {
		v = eq + 1;
	} else if (*i + 1 < argc) {
		v = argv[++*i];
	} else {
		snprintf(why, whylen, "--%s needs a value", o->name);
		return -1;
	}
	if (check_value(o, v, why, whylen) < 0)
		return -1;
	if (is_global) {
		set_global(g, o, v);
		return 0;
	}
	*which = o;
	*value = v;
	return 1;
}

/* Fills a from argv[i..]; global options may appear among them. Returns an
 * exit code; with --help stops early and returns CTL_EXIT_OK. */
static int parse_args(const ctl_cmd *c, int argc, char **argv, int i, globals *g, ctl_args *a)
{
	const ctl_opt *o, *which;
	const char *value;
	char why[256];
	int npos = 0, only_pos = 0, r;

	memset(a, 0, sizeof(*a));
	a->cmd = c;
	for (o = c->opts; o && o->name; o++)
		;
	/* The table must fit ctl_args; a violation is a bug here, not input. */
	if (c->npos > CTL_MAX_POS || (o && o - c->opts > CTL_MAX_OPTS)) {
		fprintf(stderr, "rsignctl: internal error: '%s' overflows ctl_args\n", c->words);
		return CTL_EXIT_SOFTWARE;
	}
	if (g->help)
		return CTL_EXIT_OK;
	for (; i < argc; i++) {
		if (!only_pos && strcmp(argv[i], "--") == 0) {
			only_pos = 1;
			continue;
		}
		if (only_pos || argv[i][0] != '-' || argv[i][1] == '\0') {
			if (npos == c->npos)
				return ctl_usage_error(a, "unexpected argument '%s'", argv[i]);
			if (!*argv[i])
				return ctl_usage_error(a, "empty %s", c->synopsis);
			a->pos[npos++] = argv[i];
			continue;
		}
		r = parse_option(argc, argv, &i, c->opts, g, &which, &value, why, sizeof(why));
		if (r < 0)
			return ctl_usage_error(a, "%s", why);
		if (g->help)
			return CTL_EXIT_OK;
		if (r == 0)
			continue;
		if (which->kind == CTL_OPT_LIST) {
			if (a->nlist == CTL_MAX_LIST)
				return ctl_usage_error(a, "too many --%s", which->name);
			a->list_opt[a->nlist] = (int)(which - c->opts);
			a->list[a->nlist++] = value;
			a->val[which - c->opts] = value;
		} else if (a->val[which - c->opts]) {
			return ctl_usage_error(a, "--%s given twice", which->name);
		} else {
			a->val[which - c->opts] = value;
		}
	}
	if (npos < c->npos)
		return ctl_usage_error(a, "missing %s", c->synopsis);
	for (o = c->opts; o && o->name; o++)
		if (o->required && !a->val[o - c->opts])
			return ctl_usage_error(a, "missing --%s", o->name);
	return CTL_EXIT_OK;
}

/* Finds the command named by the words at argv[*i..]; prints group help or
 * an error when there is none. Returns the command or NULL with *rc set. */
static const ctl_cmd *find_command(int argc, char **argv, int *i, globals *g, int *rc)
{
	char **w = argv + *i;
	int n = 0, k, best = -1, best_n = 0, prefix = 0;
	size_t c;

	while (*i + n < argc && n < 3 && argv[*i + n][0] != '-')
		n++;
	for (c = 0; c < NCOMMANDS; c++) {
		k = count_words(commands[c].words);
		if (k <= n && k > best_n && words_prefix(&commands[c], w, k)) {
			best = (int)c;
			best_n = k;
		}
	}
	if (best >= 0) {
		*i += best_n;
		return &commands[best];
	}
	/* No command: the longest prefix that names a group decides the help. */
	for (k = n; k > 0 && !prefix; k--)
		for (c = 0; c < NCOMMANDS && !prefix; c++)
			if (words_prefix(&commands[c], w, k))
				prefix = k;
	for (k = *i + n; k < argc && !g->help; k++)
		g->help = strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0;
	if (g->help && prefix == n) {
		print_list_help(stdout, w, n);
		*rc = CTL_EXIT_OK;
		return NULL;
	}
	if (n == 0) {
		fprintf(stderr, "rsignctl: missing command\n");
	} else if (prefix < n) {
		fprintf(stderr, "rsignctl: unknown command '");
		for (k = 0; k <= prefix; k++)
			fprintf(stderr, "%s%s", k ? " " : "", w[k]);
		fprintf(stderr, "'\n");
	} else {
		fprintf(stderr, "rsignctl: '");
		for (k = 0; k < n; k++)
			fprintf(stderr, "%s%s", k ? " " : "", w[k]);
		fprintf(stderr, "' needs a subcommand\n");
	}
	if (prefix > 0)
		print_list_help(stderr, w, prefix);
	else
		short_usage();
	*rc = CTL_EXIT_USAGE;
	return NULL;
}

/* ---- main ------------------------------------------------------------- */

int main(int argc, char **argv)
{
	globals g = {0};
	ctl_conf cf = {0};
	ctl_ctx ctx = {0};
	ctl_args a;
	const ctl_cmd *cmd;
	const ctl_opt *which;
	const char *value;
	char why[256];
	int i = 1, rc = CTL_EXIT_OK;

	while (i < argc && argv[i][0] == '-' && argv[i][1] != '\0') {
		if (parse_option(argc, argv, &i, NULL, &g, &which, &value, why, sizeof(why)) < 0) {
			fprintf(stderr, "rsignctl: %s\n", why);
			short_usage();
			return CTL_EXIT_USAGE;
		}
		i++;
	}
	if (g.version) {
		printf("rsignctl %s\n", RSIGN_VERSION);
		return CTL_EXIT_OK;
	}
	if (i < argc && strcmp(argv[i], "help") == 0) {
		g.help = 1;
		i++;
	}
	if (i == argc && g.help) {
		print_list_help(stdout, NULL, 0);
		return CTL_EXIT_OK;
	}
	cmd = find_command(argc, argv, &i, &g, &rc);
	if (!cmd)
		return rc;
	rc = parse_args(cmd, argc, argv, i, &g, &a);
	if (g.help) {
		print_cmd_help(stdout, cmd);
		return CTL_EXIT_OK;
	}
	if (rc == CTL_EXIT_OK && g.version) {
		printf("rsignctl %s\n", RSIGN_VERSION);
		return CTL_EXIT_OK;
	}
	if (rc != CTL_EXIT_OK)
		return rc;
	ctx.json = g.json;
	rc = ctl_conf_load(&cf, g.config, g.url, g.ca_file, cmd->auth);
	if (rc == CTL_EXIT_OK)
		rc = ctl_http_new(cf.url, cf.ca_file, cmd->auth ? cf.token : NULL, &ctx.http);
	ctx.url = cf.url;
	if (rc == CTL_EXIT_OK)
		rc = cmd->run(&ctx, &a);
	ctl_http_free(ctx.http);
	ctl_conf_free(&cf);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "rsignctl: cannot write to standard output\n");
		if (rc == CTL_EXIT_OK)
			rc = CTL_EXIT_CANTCREAT;
	}
	return rc;
}
