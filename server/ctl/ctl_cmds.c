/* rsignctl's shared command helpers (options, request bodies and queries
 * from tables, name-to-id resolution, human output) and the auth and
 * principal commands. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include "rsign/json.h"
#include "rsign/util.h"
#include "server/ctl/ctl_cmds.h"

#define SECRET_MAX 1024
#define AUTO_COLUMNS_MAX 8
#define ONCE_MARK " (shown once)"

/* ---- options ---------------------------------------------------------- */

static int opt_index(const ctl_args *a, const char *name)
{
	const ctl_opt *o;

	for (o = a->cmd->opts; o && o->name; o++)
		if (strcmp(o->name, name) == 0)
			return (int)(o - a->cmd->opts);
	/* A name missing from the table is a bug in this program, not input. */
	fprintf(stderr, "rsignctl: internal error: '%s' has no option --%s\n", a->cmd->words, name);
	abort();
}

const char *ctl_arg(const ctl_args *a, const char *name)
{
	return a->val[opt_index(a, name)];
}

long long ctl_arg_int(const ctl_args *a, const char *name)
{
	const char *v = ctl_arg(a, name);

	/* The parser has checked the digits and the range. */
	return v ? strtoll(v, NULL, 10) : 0;
}

int ctl_exclusive(const ctl_args *a, const char *x, const char *y)
{
	if (ctl_arg(a, x) && ctl_arg(a, y))
		return ctl_usage_error(a, "--%s and --%s exclude each other", x, y);
	return CTL_EXIT_OK;
}

static int oom(void)
{
	fprintf(stderr, "rsignctl: out of memory\n");
	return CTL_EXIT_SOFTWARE;
}

/* ---- human output ----------------------------------------------------- */

/* Display text of one value, "-" for null or absent; malloc'd. */
static char *value_text(const cJSON *v)
{
	rs_buf b;
	char *j;
	double d;

	rs_buf_init(&b, CTL_HTTP_MAX_RESPONSE);
	if (!v || cJSON_IsNull(v)) {
		(void)rs_buf_append_str(&b, "-");
	} else if (cJSON_IsString(v)) {
		(void)rs_buf_append_str(&b, v->valuestring);
	} else if (cJSON_IsBool(v)) {
		(void)rs_buf_append_str(&b, cJSON_IsTrue(v) ? "true" : "false");
	} else if (cJSON_IsNumber(v)) {
		d = v->valuedouble;
		if (d >= -9e15 && d <= 9e15 && d == (double)(long long)d)
			(void)rs_buf_printf(&b, "%lld", (long long)d);
		else
			(void)rs_buf_printf(&b, "%g", d);
	} else if ((j = rs_json_print(v))) {
		(void)rs_buf_append_str(&b, j);
		free(j);
	} else {
		rs_buf_free(&b);
		return NULL;
	}
	return (char *)rs_buf_steal(&b, NULL);
}

/* Characters on screen, counting a UTF-8 sequence once. */
static size_t display_width(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

static void pad(size_t n)
{
	while (n-- > 0)
		putchar(' ');
}

static int in_list(const char *s, const char *const *list)
{
	for (; list && *list; list++)
		if (strcmp(s, *list) == 0)
			return 1;
	return 0;
}

/* PEM and other multi-line text is for --pem or --json, not a field line. */
static int field_shown(const cJSON *it)
{
	return it->string && !(cJSON_IsString(it) && strchr(it->valuestring, '\n'));
}

static int print_fields(const cJSON *body, const char *const *once)
{
	const cJSON *it;
	size_t w = 0, len;
	char *text;

	if (!cJSON_IsObject(body)) {
		if (!(text = value_text(body)))
			return oom();
		ctl_put_safe(stdout, text, 0);
		putchar('\n');
		free(text);
		return CTL_EXIT_OK;
	}
	for (it = body->child; it; it = it->next) {
		len = field_shown(it) ? display_width(it->string) : 0;
		len += in_list(it->string, once) ? strlen(ONCE_MARK) : 0;
		w = len > w ? len : w;
	}
	for (it = body->child; it; it = it->next) {
		if (!field_shown(it))
			continue;
		if (!(text = value_text(it)))
			return oom();
		len = display_width(it->string);
		ctl_put_safe(stdout, it->string, 0);
		if (in_list(it->string, once)) {
			fputs(ONCE_MARK, stdout);
			len += strlen(ONCE_MARK);
		}
		putchar(':');
		pad(w - len + 1);
		ctl_put_safe(stdout, text, 0);
		putchar('\n');
		rs_free_secret(text);
	}
	return CTL_EXIT_OK;
}

int ctl_out_fields(const cJSON *body, const void *msg)
{
	if (!body) {
		if (msg)
			puts(msg);
		return CTL_EXIT_OK;
	}
	return print_fields(body, NULL);
}

int ctl_out_secret_fields(const cJSON *body, const void *once)
{
	int rc = print_fields(body, once);

	if (rc == CTL_EXIT_OK)
		fprintf(stderr, "rsignctl: store the secret now: the server shows it only once\n");
	return rc;
}

/* The first row's scalar fields, for tables nobody has designed yet. */
static size_t auto_columns(const cJSON *arr, ctl_column *cols)
{
	const cJSON *it, *row = cJSON_GetArrayItem(arr, 0);
	size_t n = 0;

	for (it = cJSON_IsObject(row) ? row->child : NULL; it && n < AUTO_COLUMNS_MAX;
	     it = it->next) {
		if (cJSON_IsObject(it) || cJSON_IsArray(it) || !it->string)
			continue;
		cols[n].key = it->string;
		cols[n++].header = it->string;
	}
	cols[n].key = NULL;
	return n;
}

static void print_row(char **cell, const size_t *width, size_t ncols)
{
	size_t c;

	for (c = 0; c < ncols; c++) {
		ctl_put_safe(stdout, cell[c], 0);
		if (c + 1 < ncols)
			pad(width[c] - display_width(cell[c]) + 2);
	}
	putchar('\n');
}

int ctl_out_table(const cJSON *body, const void *columns)
{
	const ctl_column *cols = columns;
	ctl_column autocols[AUTO_COLUMNS_MAX + 1];
	const cJSON *arr = body, *row, *field, *total;
	size_t ncols = 0, nrows, r, c, *width = NULL;
	char **cell = NULL;
	int rc = CTL_EXIT_OK;

	if (cJSON_IsObject(body))
		for (arr = body->child; arr && !cJSON_IsArray(arr); arr = arr->next)
			;
	if (!cJSON_IsArray(arr))
		return ctl_out_fields(body, NULL);
	if (!cols) {
		auto_columns(arr, autocols);
		cols = autocols;
	}
	while (cols[ncols].key)
		ncols++;
	nrows = (size_t)cJSON_GetArraySize(arr) + 1;
	if (ncols == 0)
		return CTL_EXIT_OK;
	cell = calloc(nrows * ncols, sizeof(*cell));
	width = calloc(ncols, sizeof(*width));
	if (!cell || !width)
		goto nomem;
	for (c = 0; c < ncols; c++)
		if (!(cell[c] = strdup(cols[c].header)))
			goto nomem;
	r = 1;
	cJSON_ArrayForEach (row, arr) {
		for (c = 0; c < ncols; c++) {
			field = cJSON_IsObject(row)
					? cJSON_GetObjectItemCaseSensitive(row, cols[c].key)
					: NULL;
			if (!(cell[r * ncols + c] = value_text(field)))
				goto nomem;
		}
		r++;
	}
	for (r = 0; r < nrows; r++)
		for (c = 0; c < ncols; c++)
			if (display_width(cell[r * ncols + c]) > width[c])
				width[c] = display_width(cell[r * ncols + c]);
	for (r = 0; r < nrows; r++)
		print_row(cell + r * ncols, width, ncols);
	total = cJSON_GetObjectItemCaseSensitive(body, "totalCount");
	if (cJSON_IsNumber(total) && total->valuedouble > (double)(nrows - 1))
		fprintf(stderr, "rsignctl: %zu of %.0f shown; --offset and --limit page on\n",
			nrows - 1, total->valuedouble);
	goto out;
nomem:
	rc = oom();
out:
	for (r = 0; cell && r < nrows * ncols; r++)
		free(cell[r]);
	free(cell);
	free(width);
	return rc;
}

int ctl_out_pem(const cJSON *body, const void *keys)
{
	const char *const *k;
	const cJSON *v;
	size_t len;
	int n = 0;

	for (k = keys; *k; k++) {
		v = cJSON_GetObjectItemCaseSensitive(body, *k);
		if (!cJSON_IsString(v) || !(len = strlen(v->valuestring)))
			continue;
		ctl_put_safe(stdout, v->valuestring, 1);
		if (v->valuestring[len - 1] != '\n')
			putchar('\n');
		n++;
	}
	if (n == 0) {
		fprintf(stderr, "rsignctl: the response has no %s\n", *(const char *const *)keys);
		return CTL_EXIT_SERVER;
	}
	return CTL_EXIT_OK;
}

int ctl_out_string(const cJSON *body, const void *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);

	if (!cJSON_IsString(v)) {
		fprintf(stderr, "rsignctl: the response has no %s\n", (const char *)key);
		return CTL_EXIT_SERVER;
	}
	ctl_put_safe(stdout, v->valuestring, 0);
	putchar('\n');
	return CTL_EXIT_OK;
}

/* ---- requests --------------------------------------------------------- */

static int is_uuid(const char *s)
{
	size_t i;

	if (strlen(s) != 36)
		return 0;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!isxdigit((unsigned char)s[i])) {
			return 0;
		}
	}
	return 1;
}

static int take_id(const cJSON *body, void *arg)
{
	const char *id = NULL;

	if (!cJSON_IsObject(body) ||
	    rs_json_str(body, "id", 1, CTL_ID_MAX - 1, &id) != RS_JSON_OK) {
		fprintf(stderr, "rsignctl: the server's answer has no id\n");
		return CTL_EXIT_SERVER;
	}
	rs_strlcpy(arg, id, CTL_ID_MAX);
	return CTL_EXIT_OK;
}

int ctl_resolve(ctl_ctx *ctx, const char *collection, const char *value, char out[CTL_ID_MAX])
{
	rs_buf path;
	int rc;

	if (is_uuid(value)) {
		rs_strlcpy(out, value, CTL_ID_MAX);
		return CTL_EXIT_OK;
	}
	rs_buf_init(&path, CTL_HTTP_MAX_PATH);
	(void)rs_buf_append_str(&path, collection);
	rc = ctl_http_pathf(ctx->http, &path, "/%s", value);
	if (rc == CTL_EXIT_OK)
		rc = ctl_http_call(ctx->http, "GET", rs_buf_str(&path), NULL, take_id, out);
	rs_buf_free(&path);
	return rc;
}

/* The value of one field-map or query option, resolved to an id if asked. */
static int option_value(ctl_ctx *ctx, const char *resolve, const char *v, char id[CTL_ID_MAX],
			const char **out)
{
	int rc = CTL_EXIT_OK;

	*out = v;
	if (resolve) {
		rc = ctl_resolve(ctx, resolve, v, id);
		*out = id;
	}
	return rc;
}

/* The object that field (maybe "parent.name") goes into, and its name. */
static cJSON *field_parent(cJSON *root, const char *field, const char **name)
{
	const char *dot = strchr(field, '.');
	char parent[64];
	cJSON *p;

	*name = field;
	if (!dot)
		return root;
	*name = dot + 1;
	if ((size_t)(dot - field) >= sizeof(parent))
		return NULL;
	memcpy(parent, field, (size_t)(dot - field));
	parent[dot - field] = '\0';
	p = cJSON_GetObjectItemCaseSensitive(root, parent);
	return p ? p : cJSON_AddObjectToObject(root, parent);
}

static int field_item(ctl_ctx *ctx, const ctl_args *a, const ctl_field *m, const char *v,
		      cJSON **item)
{
	char id[CTL_ID_MAX];
	const char *s;
	cJSON *e;
	int i, rc = CTL_EXIT_OK;

	switch (m->kind) {
	case CTL_F_STR:
		rc = option_value(ctx, m->resolve, v, id, &s);
		*item = rc == CTL_EXIT_OK ? cJSON_CreateString(s) : NULL;
		break;
	case CTL_F_INT:
		*item = cJSON_CreateNumber((double)ctl_arg_int(a, m->opt));
		break;
	case CTL_F_CONST:
		*item = cJSON_CreateString(m->value);
		break;
	case CTL_F_TRUE:
	case CTL_F_FALSE:
	case CTL_F_FLAG:
		*item = cJSON_CreateBool(m->kind == CTL_F_TRUE || (m->kind == CTL_F_FLAG && v));
		break;
	case CTL_F_NULL:
		*item = cJSON_CreateNull();
		break;
	case CTL_F_LIST:
		*item = cJSON_CreateArray();
		for (i = 0; *item && i < a->nlist && rc == CTL_EXIT_OK; i++) {
			if (a->list_opt[i] != opt_index(a, m->opt))
				continue;
			rc = option_value(ctx, m->resolve, a->list[i], id, &s);
			if (rc == CTL_EXIT_OK &&
			    (!(e = cJSON_CreateString(s)) || !cJSON_AddItemToArray(*item, e))) {
				cJSON_Delete(e);
				rc = oom();
			}
		}
		break;
	}
	if (rc != CTL_EXIT_OK) {
		cJSON_Delete(*item);
		*item = NULL;
		return rc;
	}
	return *item ? CTL_EXIT_OK : oom();
}

int ctl_body(ctl_ctx *ctx, const ctl_args *a, const ctl_field *map, cJSON **out)
{
	cJSON *parent, *item = NULL;
	const ctl_field *m;
	const char *v, *name;
	int rc = CTL_EXIT_OK;

	if (!*out && !(*out = cJSON_CreateObject()))
		return oom();
	for (m = map; m->opt && rc == CTL_EXIT_OK; m++) {
		v = ctl_arg(a, m->opt);
		if (!v && m->kind != CTL_F_FLAG)
			continue;
		rc = field_item(ctx, a, m, v, &item);
		if (rc != CTL_EXIT_OK)
			break;
		parent = field_parent(*out, m->field, &name);
		if (!parent || !cJSON_AddItemToObject(parent, name, item)) {
			cJSON_Delete(item);
			rc = oom();
		}
	}
	return rc;
}

static int add_query(ctl_ctx *ctx, const ctl_args *a, rs_buf *path, const ctl_query *q)
{
	char id[CTL_ID_MAX];
	const char *v;
	int rc = CTL_EXIT_OK;

	for (; q && q->opt && rc == CTL_EXIT_OK; q++) {
		if (!(v = ctl_arg(a, q->opt)))
			continue;
		rc = option_value(ctx, q->resolve, q->value ? q->value : v, id, &v);
		if (rc == CTL_EXIT_OK)
			rc = ctl_http_query(ctx->http, path, q->param, v);
	}
	return rc;
}

typedef struct {
	const ctl_ctx *ctx;
	const ctl_out *out;
} show_arg;

static int show(const cJSON *body, void *arg)
{
	const show_arg *s = arg;
	char *text;

	if (s->ctx->json && body) {
		if (!(text = cJSON_Print(body)))
			return oom();
		puts(text);
		rs_free_secret(text);
	}
	if (!s->out || !s->out->fn || (s->ctx->json && !s->out->always))
		return CTL_EXIT_OK;
	return s->out->fn(body, s->out->arg);
}

static int vrequest(ctl_ctx *ctx, const ctl_args *a, const char *method, const cJSON *req,
		    const ctl_query *query, const ctl_out *out, const char *fmt, va_list ap)
	__attribute__((format(printf, 7, 0)));

static int vrequest(ctl_ctx *ctx, const ctl_args *a, const char *method, const cJSON *req,
		    const ctl_query *query, const ctl_out *out, const char *fmt, va_list ap)
{
	show_arg s = {ctx, out};
	rs_buf path;
	int rc;

	rs_buf_init(&path, CTL_HTTP_MAX_PATH);
	rc = ctl_http_vpathf(ctx->http, &path, fmt, ap);
	if (rc == CTL_EXIT_OK)
		rc = add_query(ctx, a, &path, query);
	if (rc == CTL_EXIT_OK)
		rc = ctl_http_call(ctx->http, method, rs_buf_str(&path), req, show, &s);
	rs_buf_free(&path);
	return rc;
}

int ctl_request(ctl_ctx *ctx, const ctl_args *a, const char *method, const cJSON *req,
		const ctl_query *query, const ctl_out *out, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vrequest(ctx, a, method, req, query, out, fmt, ap);
	va_end(ap);
	return rc;
}

int ctl_send(ctl_ctx *ctx, const ctl_args *a, const char *method, const ctl_field *map,
	     const ctl_out *out, const char *fmt, ...)
{
	cJSON *req = NULL;
	va_list ap;
	int rc;

	rc = ctl_body(ctx, a, map, &req);
	if (rc == CTL_EXIT_OK) {
		va_start(ap, fmt);
		rc = vrequest(ctx, a, method, req, NULL, out, fmt, ap);
		va_end(ap);
	}
	ctl_json_delete_wiped(req);
	return rc;
}

int ctl_any_option(const ctl_args *a)
{
	const ctl_opt *o;

	for (o = a->cmd->opts; o && o->name; o++)
		if (a->val[o - a->cmd->opts])
			return 1;
	return 0;
}

int ctl_read_file(const char *path, size_t max, rs_buf *b)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char chunk[4096];
	size_t n;
	int rc = CTL_EXIT_OK;

	rs_buf_init(b, max);
	if (!f) {
		fprintf(stderr, "rsignctl: cannot read %s: %s\n", path, strerror(errno));
		return CTL_EXIT_NOINPUT;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (rs_buf_append(b, chunk, n) < 0) {
			fprintf(stderr, "rsignctl: %s is larger than %zu bytes\n", path, max);
			rc = CTL_EXIT_DATAERR;
			break;
		}
	}
	if (rc == CTL_EXIT_OK && ferror(f)) {
		fprintf(stderr, "rsignctl: cannot read %s: %s\n", path, strerror(errno));
		rc = CTL_EXIT_NOINPUT;
	}
	rs_wipe(chunk, sizeof(chunk));
	if (f != stdin)
		fclose(f);
	return rc;
}

/* ---- auth --------------------------------------------------------------- */

const ctl_out ctl_fields_out = {ctl_out_fields, NULL, 0};

int ctl_health(ctl_ctx *ctx, const ctl_args *a)
{
	return ctl_request(ctx, a, "GET", NULL, NULL, &ctl_fields_out, "/ready");
}

/* GET /backup into a new file: checked by the server's SHA-256 while it
 * arrives, then by SQLite's file header; removed when either fails. */
int ctl_backup(ctl_ctx *ctx, const ctl_args *a)
{
	static const char magic[16] = "SQLite format 3";
	const char *out = ctl_arg(a, "out");
	char head[sizeof(magic)];
	long long size = 0;
	int rc = ctl_http_download(ctx->http, "/backup", out, &size);

	if (rc != CTL_EXIT_OK)
		return rc;
	FILE *f = fopen(out, "rb");
	int ok = f && fread(head, 1, sizeof(head), f) == sizeof(head) &&
		 memcmp(head, magic, sizeof(magic)) == 0;
	if (f)
		fclose(f);
	if (!ok) {
		fprintf(stderr, "rsignctl: %s is not an SQLite database; removed\n", out);
		unlink(out);
		return CTL_EXIT_DATAERR;
	}
	if (ctx->json)
		printf("{\"file\": \"%s\", \"bytes\": %lld}\n", out, size);
	else
		printf("backup written to %s (%lld bytes, SHA-256 checked)\n", out, size);
	return CTL_EXIT_OK;
}

int ctl_whoami(ctl_ctx *ctx, const ctl_args *a)
{
	return ctl_request(ctx, a, "GET", NULL, NULL, &ctl_fields_out, "/auth/whoami");
}

/* $RSIGN_CLIENT_SECRET, else one line of stdin (not echoed on a terminal). */
static int read_secret(char *out, size_t max)
{
	const char *e = getenv("RSIGN_CLIENT_SECRET");
	struct termios saved, quiet;
	int echo_off = 0, rc = CTL_EXIT_OK;
	size_t n = 0;
	ssize_t r;
	char c;

	if (e && *e) {
		if (rs_strlcpy(out, e, max) < max)
			return CTL_EXIT_OK;
		rs_wipe(out, max);
		fprintf(stderr, "rsignctl: RSIGN_CLIENT_SECRET is too long\n");
		return CTL_EXIT_CONFIG;
	}
	if (isatty(STDIN_FILENO)) {
		fprintf(stderr, "client secret: ");
		if (tcgetattr(STDIN_FILENO, &saved) == 0) {
			quiet = saved;
			quiet.c_lflag &= ~(tcflag_t)ECHO;
			echo_off = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
		}
	}
	for (;;) {
		r = read(STDIN_FILENO, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r != 1 || c == '\n')
			break;
		if (n + 1 >= max) {
			fprintf(stderr, "rsignctl: the client secret is too long\n");
			rc = CTL_EXIT_DATAERR;
			break;
		}
		out[n++] = c;
	}
	if (echo_off) {
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
		fputc('\n', stderr);
	}
	while (n > 0 && out[n - 1] == '\r')
		n--;
	out[n] = '\0';
	rs_wipe(&c, sizeof(c));
	if (rc == CTL_EXIT_OK && n == 0) {
		fprintf(stderr, "rsignctl: no client secret: set RSIGN_CLIENT_SECRET or give it "
				"on stdin\n");
		rc = CTL_EXIT_NOINPUT;
	}
	return rc;
}

int ctl_login(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_out out = {ctl_out_string, "accessToken", 0};
	char secret[SECRET_MAX];
	cJSON *req = NULL;
	int rc;

	rc = read_secret(secret, sizeof(secret));
	if (rc != CTL_EXIT_OK)
		goto out;
	req = cJSON_CreateObject();
	if (!req || !cJSON_AddStringToObject(req, "clientId", ctl_arg(a, "client-id")) ||
	    !cJSON_AddStringToObject(req, "clientSecret", secret)) {
		rc = oom();
		goto out;
	}
	rc = ctl_request(ctx, a, "POST", req, NULL, &out, "/auth/universal-auth/login");
out:
	ctl_json_delete_wiped(req);
	rs_wipe(secret, sizeof(secret));
	return rc;
}

/* ---- principals ------------------------------------------------------- */

static const char *const secret_keys[] = {"token", "clientSecret", NULL};
static const ctl_out out_once = {ctl_out_secret_fields, secret_keys, 0};

int ctl_list_count(const ctl_args *a, const char *name)
{
	int idx = opt_index(a, name), n = 0;

	for (int i = 0; i < a->nlist; i++)
		n += a->list_opt[i] == idx;
	return n;
}

int ctl_claim_patterns(const ctl_args *a, const char *name, cJSON *o)
{
	int idx = opt_index(a, name);

	for (int i = 0; i < a->nlist; i++) {
		const char *eq = a->list_opt[i] == idx ? strchr(a->list[i], '=') : NULL;
		if (a->list_opt[i] != idx)
			continue;
		if (!eq || eq == a->list[i])
			return ctl_usage_error(a, "--%s takes CLAIM=PATTERN, not '%s'", name,
					       a->list[i]);
		char claim[256];
		if ((size_t)(eq - a->list[i]) >= sizeof(claim))
			return ctl_usage_error(a, "--%s: the claim name is too long", name);
		memcpy(claim, a->list[i], (size_t)(eq - a->list[i]));
		claim[eq - a->list[i]] = '\0';
		if (!cJSON_AddStringToObject(o, claim, eq + 1))
			return oom();
	}
	return CTL_EXIT_OK;
}

/* The values of LIST option name, in order, added to o as array field. */
static int list_field(const ctl_args *a, const char *name, cJSON *o, const char *field)
{
	int idx = opt_index(a, name);
	cJSON *arr = cJSON_AddArrayToObject(o, field);

	for (int i = 0; arr && i < a->nlist; i++)
		if (a->list_opt[i] == idx &&
		    !cJSON_AddItemToArray(arr, cJSON_CreateString(a->list[i])))
			return oom();
	return arr ? CTL_EXIT_OK : oom();
}

/* An identity's oidc object from the --oidc-* options (--oidc-issuer
 * given); the server checks every value. Returns an exit code. */
static int oidc_from_args(const ctl_args *a, cJSON **out)
{
	cJSON *o = cJSON_CreateObject(), *bound;
	const char *v;
	int rc = CTL_EXIT_OK;
	rs_buf b;

	*out = o;
	if (!o || !cJSON_AddStringToObject(o, "issuer", ctl_arg(a, "oidc-issuer")))
		return oom();
	if ((rc = ctl_exclusive(a, "oidc-jwks-url", "oidc-jwks-file")) != CTL_EXIT_OK)
		return rc;
	if ((v = ctl_arg(a, "oidc-jwks-url")) && !cJSON_AddStringToObject(o, "jwksUrl", v))
		return oom();
	if ((v = ctl_arg(a, "oidc-jwks-file"))) {
		rc = ctl_read_file(v, 1 << 16, &b);
		cJSON *set = rc == CTL_EXIT_OK ? cJSON_ParseWithLength((const char *)b.data, b.len)
					       : NULL;
		rs_buf_free(&b);
		if (rc != CTL_EXIT_OK)
			return rc;
		if (!set) {
			fprintf(stderr, "rsignctl: %s: not JSON\n", v);
			return CTL_EXIT_DATAERR;
		}
		cJSON_AddItemToObject(o, "jwks", set);
	}
	if ((rc = list_field(a, "audience", o, "audiences")) != CTL_EXIT_OK)
		return rc;
	if ((v = ctl_arg(a, "bound-subject")) && !cJSON_AddStringToObject(o, "boundSubject", v))
		return oom();
	if (!(bound = cJSON_AddObjectToObject(o, "boundClaims")))
		return oom();
	if ((rc = ctl_claim_patterns(a, "bound-claim", bound)) != CTL_EXIT_OK)
		return rc;
	if (ctl_list_count(a, "record-claim") &&
	    (rc = list_field(a, "record-claim", o, "recordClaims")) != CTL_EXIT_OK)
		return rc;
	if (ctl_arg(a, "clock-skew") &&
	    !cJSON_AddNumberToObject(o, "clockSkewSeconds", (double)ctl_arg_int(a, "clock-skew")))
		return oom();
	return CTL_EXIT_OK;
}

int ctl_principal_create(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_field map[] = {
		{"type", "type", CTL_F_STR, NULL, NULL},
		{"name", "name", CTL_F_STR, NULL, NULL},
		{"admin", "admin", CTL_F_FLAG, NULL, NULL},
		{"metrics", "metrics", CTL_F_FLAG, NULL, NULL},
		CTL_FIELDS_END,
	};
	cJSON *req = NULL, *oidc = NULL;
	int rc = ctl_body(ctx, a, map, &req);

	if (rc == CTL_EXIT_OK && ctl_arg(a, "oidc-issuer")) {
		rc = oidc_from_args(a, &oidc);
		if (rc == CTL_EXIT_OK && !cJSON_AddItemToObject(req, "oidc", oidc))
			rc = oom();
		else if (rc == CTL_EXIT_OK)
			oidc = NULL;
	}
	if (rc == CTL_EXIT_OK)
		rc = ctl_request(ctx, a, "POST", req, NULL, &out_once, "/principals");
	cJSON_Delete(oidc);
	ctl_json_delete_wiped(req);
	return rc;
}

/* principal oidc ID --oidc-issuer ... | --remove: sets or removes an
 * identity's OIDC login. */
int ctl_principal_oidc(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_out out = {ctl_out_fields, "identity updated", 0};
	cJSON *req = cJSON_CreateObject(), *oidc = NULL;
	int rc = CTL_EXIT_OK;

	if (!req)
		return oom();
	if (!ctl_arg(a, "remove") == !ctl_arg(a, "oidc-issuer")) {
		cJSON_Delete(req);
		return ctl_usage_error(a,
				       "give either --oidc-issuer (and its options) or --remove");
	}
	if (ctl_arg(a, "remove"))
		oidc = cJSON_CreateNull();
	else
		rc = oidc_from_args(a, &oidc);
	if (rc == CTL_EXIT_OK && cJSON_AddItemToObject(req, "oidc", oidc)) {
		oidc = NULL;
		rc = ctl_request(ctx, a, "PATCH", req, NULL, &out, "/principals/%s", a->pos[0]);
	} else if (rc == CTL_EXIT_OK) {
		rc = oom();
	}
	cJSON_Delete(oidc);
	cJSON_Delete(req);
	return rc;
}

/* The --offset and --limit options of every list command. */
const ctl_query ctl_page_query[] = {
	{"offset", "offset", NULL, NULL},
	{"limit", "limit", NULL, NULL},
	CTL_QUERY_END,
};

int ctl_principal_list(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_column cols[] = {
		{"id", "ID"},	    {"name", "NAME"},	      {"type", "TYPE"},
		{"admin", "ADMIN"}, {"disabled", "DISABLED"}, {"createdAt", "CREATED"},
		CTL_COLUMNS_END,
	};
	static const ctl_out out = {ctl_out_table, cols, 0};

	return ctl_request(ctx, a, "GET", NULL, ctl_page_query, &out, "/principals");
}

static int principal_set_disabled(ctl_ctx *ctx, const ctl_args *a, int disabled)
{
	static const ctl_out out_off = {ctl_out_fields, "principal disabled", 0};
	static const ctl_out out_on = {ctl_out_fields, "principal enabled", 0};
	cJSON *req = cJSON_CreateObject();

	if (!req || !cJSON_AddBoolToObject(req, "disabled", disabled)) {
		cJSON_Delete(req);
		return oom();
	}
	int rc = ctl_request(ctx, a, "PATCH", req, NULL, disabled ? &out_off : &out_on,
			     "/principals/%s", a->pos[0]);
	cJSON_Delete(req);
	return rc;
}

int ctl_principal_disable(ctl_ctx *ctx, const ctl_args *a)
{
	return principal_set_disabled(ctx, a, 1);
}

int ctl_principal_enable(ctl_ctx *ctx, const ctl_args *a)
{
	return principal_set_disabled(ctx, a, 0);
}

int ctl_principal_get(ctl_ctx *ctx, const ctl_args *a)
{
	return ctl_request(ctx, a, "GET", NULL, NULL, &ctl_fields_out, "/principals/%s", a->pos[0]);
}

int ctl_principal_delete(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_out out = {ctl_out_fields, "principal deleted", 0};

	return ctl_request(ctx, a, "DELETE", NULL, NULL, &out, "/principals/%s", a->pos[0]);
}

int ctl_principal_token(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_field none[] = {CTL_FIELDS_END};

	return ctl_send(ctx, a, "POST", none, &out_once, "/principals/%s/tokens", a->pos[0]);
}

/* ---- a principal's credentials ------------------------------------------ */

int ctl_token_list(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_column cols[] = {
		{"id", "ID"},
		{"name", "NAME"},
		{"kind", "KIND"},
		{"createdAt", "CREATED"},
		{"expiresAt", "EXPIRES"},
		{"lastUsedAt", "LAST USED"},
		CTL_COLUMNS_END,
	};
	static const ctl_out out = {ctl_out_table, cols, 0};

	return ctl_request(ctx, a, "GET", NULL, ctl_page_query, &out, "/principals/%s/tokens",
			   a->pos[0]);
}

int ctl_token_create(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_field map[] = {
		{"name", "name", CTL_F_STR, NULL, NULL},
		{"expires-in", "expiresIn", CTL_F_INT, NULL, NULL},
		{"expires-at", "expiresAt", CTL_F_STR, NULL, NULL},
		CTL_FIELDS_END,
	};
	int rc = ctl_exclusive(a, "expires-in", "expires-at");

	if (rc != CTL_EXIT_OK)
		return rc;
	return ctl_send(ctx, a, "POST", map, &out_once, "/principals/%s/tokens", a->pos[0]);
}

int ctl_token_revoke(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_out out = {ctl_out_fields, "token revoked", 0};

	return ctl_request(ctx, a, "DELETE", NULL, NULL, &out, "/principals/%s/tokens/%s",
			   a->pos[0], a->pos[1]);
}

int ctl_principal_rotate_secret(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_field map[] = {
		{"overlap", "overlapSeconds", CTL_F_INT, NULL, NULL},
		CTL_FIELDS_END,
	};

	return ctl_send(ctx, a, "POST", map, &out_once, "/principals/%s/secrets/rotate", a->pos[0]);
}

int ctl_principal_secrets(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_column cols[] = {
		{"id", "ID"},
		{"clientId", "CLIENT ID"},
		{"createdAt", "CREATED"},
		{"expiresAt", "EXPIRES"},
		CTL_COLUMNS_END,
	};
	static const ctl_out out = {ctl_out_table, cols, 0};

	return ctl_request(ctx, a, "GET", NULL, NULL, &out, "/principals/%s/secrets", a->pos[0]);
}
