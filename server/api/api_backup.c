/* GET /backup: an online, checked copy of the SQLite database, streamed to
 * an admin (rsignctl backup). The store makes the copy beside the database
 * and hands back an unlinked descriptor; this file hashes it (the
 * X-Content-SHA256 header lets the client check what it received) and
 * gives it to the HTTP layer, which streams it and closes it. Audited as
 * `backup.create`, in the copy itself. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include "rsign/log.h"
#include "rsign/base64.h"
#include "rsign/util.h"
#include "server/api/api.h"

#define READ_CHUNK 65536

/* SHA-256 of the whole file at fd, read with pread (the offset stays 0). */
static int sha256_fd(int fd, long long size, char hex[65])
{
	unsigned char buf[READ_CHUNK], md[32];
	unsigned int mdlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	long long off = 0;
	int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1;

	while (ok && off < size) {
		ssize_t n = pread(fd, buf, sizeof(buf), (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ok = 0;
			break;
		}
		ok = EVP_DigestUpdate(c, buf, (size_t)n) == 1;
		off += n;
	}
	ok = ok && EVP_DigestFinal_ex(c, md, &mdlen) == 1 && mdlen == sizeof(md);
	EVP_MD_CTX_free(c);
	if (!ok)
		return -1;
	rs_hex_encode(md, sizeof(md), hex);
	return 0;
}

srv_err api_backup(srv_req *r, cJSON **out)
{
	srv_store *st = r->ctx->store;
	srv_audit a = {0};
	char err[512] = "";
	struct stat sb;
	int fd = -1;
	srv_err e;

	(void)out;
	if (!st->ops->backup)
		return srv_fail(r, SRV_R_BACKUP_UNSUPPORTED,
				"the database is PostgreSQL: back it up with pg_dump or a base "
				"backup (docs/operations.md, Backups)");
	if ((e = api_audit_entry(r, &a, "backup.create", "database", "main", NULL)) != SRV_OK)
		return e;
	srv_st_rc rc = st->ops->backup(st, &a, &fd, err, sizeof(err));
	api_audit_done(&a);
	if (rc != SRV_ST_OK) {
		rs_err("backup for %s failed: %s", r->actor.name, err);
		return srv_fail(r, srv_reason_from_store(rc), "the backup failed: %s", err);
	}
	if (fstat(fd, &sb) != 0 || sha256_fd(fd, (long long)sb.st_size, r->file_sha256) != 0) {
		close(fd);
		return srv_fail(r, SRV_R_INTERNAL, "cannot read the copy back");
	}
	r->file_fd = fd;
	r->file_size = (long long)sb.st_size;
	r->content_type = "application/vnd.sqlite3";
	rs_info("backup of %lld bytes for %s", r->file_size, r->actor.name);
	return SRV_OK;
}
