/* The SoftHSM2 token fixture of the C tests; see softhsm_fixture.h. */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "softhsm_fixture.h"

static char dir[64];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int fixture_softhsm_setup(const char *name, char *err, size_t errlen)
{
	char path[256];
	FILE *f;

	if (snprintf(dir, sizeof(dir), "/tmp/rsign-test-%s-XXXXXX", name) >= (int)sizeof(dir) ||
	    !mkdtemp(dir)) {
		snprintf(err, errlen, "cannot create a temporary directory for %s: %s", name,
			 strerror(errno));
		dir[0] = '\0';
		return -1;
	}
	snprintf(path, sizeof(path), "%s/tokens", dir);
	if (mkdir(path, 0700) != 0) {
		snprintf(err, errlen, "mkdir %s: %s", path, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/softhsm2.conf", dir);
	f = fopen(path, "w");
	if (!f ||
	    fprintf(f,
		    "directories.tokendir = %s/tokens\nobjectstore.backend = file\n"
		    "log.level = ERROR\n",
		    dir) < 0 ||
	    fclose(f) != 0) {
		snprintf(err, errlen, "cannot write %s", path);
		return -1;
	}
	if (setenv("SOFTHSM2_CONF", path, 1) != 0) {
		snprintf(err, errlen, "setenv SOFTHSM2_CONF: %s", strerror(errno));
		return -1;
	}
	return 0;
}

const char *fixture_softhsm_dir(void)
{
	return dir;
}

srv_hsm *fixture_softhsm_token(int pool, char *err, size_t errlen)
{
	srv_hsm *h = NULL;

	if (srv_hsm_init_token(FIXTURE_MODULE, FIXTURE_LABEL, FIXTURE_SO_PIN, FIXTURE_PIN, err,
			       errlen) != SRV_HSM_OK ||
	    srv_hsm_open(FIXTURE_MODULE, FIXTURE_LABEL, FIXTURE_PIN, pool, &h, err, errlen) !=
		    SRV_HSM_OK)
		return NULL;
	return h;
}

int fixture_softhsm_teardown(void)
{
	if (!dir[0])
		return -1;
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return access(dir, F_OK) == 0 ? -1 : 0;
}
