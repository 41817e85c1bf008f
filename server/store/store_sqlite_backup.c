/* Online backup of the SQLite store (`rsignd backup`, and GET /backup
 * through the store's backup op): SQLite's backup API copies one consistent
 * snapshot while rsignd goes on serving, into a new file that is checked
 * before it takes its final name. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/store/store_sqlite.h"

static int text_of(sqlite3 *db, const char *sql, char *out, size_t outlen)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			const unsigned char *t = sqlite3_column_text(st, 0);
			snprintf(out, outlen, "%s", t ? (const char *)t : "");
			rc = SQLITE_OK;
		} else if (rc == SQLITE_DONE) {
			out[0] = '\0';
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(st);
	return rc;
}

/* The copy is whole, its references hold, and its schema is the source's. */
static int verify_copy(sqlite3 *db, const char *want_version, FILE *report, char *err,
		       size_t errlen)
{
	char buf[256];
	if (text_of(db, "PRAGMA integrity_check", buf, sizeof(buf)) != SQLITE_OK ||
	    strcmp(buf, "ok") != 0) {
		snprintf(err, errlen, "the copy fails its integrity check: %s",
			 buf[0] ? buf : sqlite3_errmsg(db));
		return -1;
	}
	if (text_of(db, "PRAGMA foreign_key_check", buf, sizeof(buf)) != SQLITE_OK || buf[0]) {
		snprintf(err, errlen, "the copy fails its foreign-key check (table %s)",
			 buf[0] ? buf : sqlite3_errmsg(db));
		return -1;
	}
	if (text_of(db, "PRAGMA user_version", buf, sizeof(buf)) != SQLITE_OK ||
	    strcmp(buf, want_version) != 0) {
		snprintf(err, errlen, "the copy's schema version is %s, the database's %s", buf,
			 want_version);
		return -1;
	}
	/* every table's rows, the names from the copy's own schema */
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db,
			       "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT "
			       "LIKE 'sqlite_%' ORDER BY rowid",
			       -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "the copy's schema cannot be read: %s", sqlite3_errmsg(db));
		return -1;
	}
	int rc = SQLITE_DONE, bad = 0;
	while (!bad && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		char sql[160];
		if (!name || strlen(name) > 64 || strchr(name, '"')) {
			snprintf(err, errlen, "the copy holds a table rsignd does not make");
			bad = 1;
		} else {
			snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\"", name);
			if (text_of(db, sql, buf, sizeof(buf)) != SQLITE_OK) {
				snprintf(err, errlen, "the copy cannot be read (%s): %s", name,
					 sqlite3_errmsg(db));
				bad = 1;
			} else if (report) {
				fprintf(report, "%-17s %s rows\n", name, buf);
			}
		}
	}
	sqlite3_finalize(st);
	if (bad)
		return -1;
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "the copy's schema cannot be read: %s", sqlite3_errstr(rc));
		return -1;
	}
	return 0;
}

/* One snapshot: a single backup step holds one read transaction, which a
 * WAL database gives without stopping its writers. A step that meets a
 * lock (a checkpoint, a migration) is tried again for up to 30 s. */
static int copy_snapshot(sqlite3 *src, sqlite3 *dst, char *err, size_t errlen)
{
	for (int attempt = 0; attempt < 300; attempt++) {
		sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
		if (!b) {
			snprintf(err, errlen, "cannot start the backup: %s", sqlite3_errmsg(dst));
			return -1;
		}
		int rc = sqlite3_backup_step(b, -1);
		int frc = sqlite3_backup_finish(b);
		if (rc == SQLITE_DONE && frc == SQLITE_OK)
			return 0;
		if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED) {
			snprintf(err, errlen, "the backup failed: %s", sqlite3_errstr(rc));
			return -1;
		}
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	snprintf(err, errlen, "the database stayed locked for 30 s; nothing was written");
	return -1;
}

static int sync_dir_of(const char *path)
{
	char buf[4096];
	snprintf(buf, sizeof(buf), "%s", path);
	int fd = open(dirname(buf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

int srv_store_sqlite_backup(const char *path, const char *out, FILE *report, char *err,
			    size_t errlen)
{
	char part[4096], version[32];
	sqlite3 *src = NULL, *dst = NULL;
	int ret = -1, made = 0;
	if (snprintf(part, sizeof(part), "%s.partial", out) >= (int)sizeof(part)) {
		snprintf(err, errlen, "the output path is too long");
		return -1;
	}
	if (access(out, F_OK) == 0) {
		snprintf(err, errlen, "%s exists: a backup never overwrites a file", out);
		return -1;
	}
	/* read-write without create: a WAL reader needs the -shm file */
	if (sqlite3_open_v2(path, &src, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
		    SQLITE_OK ||
	    sqlite3_busy_timeout(src, 5000) != SQLITE_OK) {
		snprintf(err, errlen, "%s: cannot open the database: %s", path,
			 src ? sqlite3_errmsg(src) : "out of memory");
		goto out;
	}
	if (text_of(src, "PRAGMA user_version", version, sizeof(version)) != SQLITE_OK) {
		snprintf(err, errlen, "%s: not a database rsignd can read: %s", path,
			 sqlite3_errmsg(src));
		goto out;
	}
	int fd = open(part, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s%s", part, strerror(errno),
			 errno == EEXIST ? " (left by an interrupted backup, or one running now: "
					   "remove it once none runs)"
					 : "");
		goto out;
	}
	close(fd);
	made = 1;
	if (sqlite3_open_v2(part, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
		    SQLITE_OK ||
	    sqlite3_exec(dst, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", part, dst ? sqlite3_errmsg(dst) : "out of memory");
		goto out;
	}
	if (copy_snapshot(src, dst, err, errlen) != 0)
		goto out;
	/* one self-contained file: the copy leaves WAL mode */
	char mode[32];
	if (text_of(dst, "PRAGMA journal_mode=DELETE", mode, sizeof(mode)) != SQLITE_OK ||
	    strcmp(mode, "delete") != 0) {
		snprintf(err, errlen, "the copy cannot leave WAL mode: %s", sqlite3_errmsg(dst));
		goto out;
	}
	if (verify_copy(dst, version, report, err, errlen) != 0)
		goto out;
	sqlite3_close(dst);
	dst = NULL;
	/* link() refuses an existing name: a file that appeared meanwhile stays */
	if (link(part, out) != 0) {
		snprintf(err, errlen, "%s: %s", out, strerror(errno));
		goto out;
	}
	if (sync_dir_of(out) != 0) {
		snprintf(err, errlen, "%s: cannot sync its directory: %s", out, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	if (dst)
		sqlite3_close(dst);
	if (src)
		sqlite3_close(src);
	if (made)
		unlink(part);
	return ret;
}

/* The op of GET /backup: the audit entry first (so the copy holds it), then
 * the copy under a random name beside the database, opened and unlinked:
 * nothing is left on disk once the descriptor is closed. */
static srv_st_rc no_change(sq_store *s, const char *op, const void *arg, const srv_audit *a)
{
	(void)s;
	(void)op;
	(void)arg;
	(void)a;
	return SRV_ST_OK;
}

srv_st_rc sq_backup(srv_store *st, const srv_audit *a, int *fd, char *err, size_t errlen)
{
	sq_store *s = SQ(st);
	char out[4096], rnd[33];
	srv_st_rc r;

	*fd = -1;
	if ((r = sq_audited(s, "backup", no_change, NULL, a)) != SRV_ST_OK) {
		snprintf(err, errlen, "cannot write the audit entry");
		return r;
	}
	if (rs_random_hex(16, rnd) != 0 ||
	    snprintf(out, sizeof(out), "%s.backup-%s", s->path, rnd) >= (int)sizeof(out)) {
		snprintf(err, errlen, "no name for the copy");
		return SRV_ST_FAILED;
	}
	if (srv_store_sqlite_backup(s->path, out, NULL, err, errlen) != 0)
		return SRV_ST_FAILED;
	*fd = open(out, O_RDONLY | O_CLOEXEC);
	int saved = errno;
	if (unlink(out) != 0)
		rs_err("store: backup: cannot remove %s: %s", out, strerror(errno));
	if (*fd < 0) {
		snprintf(err, errlen, "cannot open the copy: %s", strerror(saved));
		return SRV_ST_FAILED;
	}
	return SRV_ST_OK;
}
