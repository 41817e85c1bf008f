/* The row MAC key at start (issue 10, item 9): rsignd finds the HMAC key
 * labelled ROWMAC_LABEL in its token and hands the store a function that
 * MACs with it, before anything reads or writes a row. A token without one
 * (a new deployment, or a database from before schema 7) gets one, and the
 * rows that have no MAC yet are sealed with it -- only then, so that a row
 * slipped into the database later is never sealed:
 *   1. create the key labelled ROWMAC_LABEL_NEW (unless an interrupted start
 *      left one),
 *   2. seal every row without a MAC (one transaction),
 *   3. relabel the key ROWMAC_LABEL.
 * An interruption before 3 leaves the key under its temporary label, and
 * the next start resumes at 2; after 3, nothing is sealed again. */
#include <stdio.h>
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/rsignd/rowmac.h"

#define ROWMAC_LABEL_NEW ROWMAC_LABEL "-new"

/* One rsignd per process: the key its store's MACs are made with. */
static struct {
	srv_hsm *hsm;
	const char *label;
} key;

static int mac_with_token(void *arg, const unsigned char *msg, size_t len,
			  unsigned char out[SRV_MAC_LEN])
{
	(void)arg;
	return srv_hsm_mac(key.hsm, key.label, msg, len, out) == SRV_HSM_OK ? 0 : -1;
}

int srv_rowmac_start(srv_hsm *h, srv_store *st, char *err, size_t errlen)
{
	int found = 0;
	size_t n = 0;

	if (srv_hsm_mac_key_find(h, ROWMAC_LABEL, &found) != SRV_HSM_OK) {
		snprintf(err, errlen, "cannot look for the row MAC key in the token");
		return -1;
	}
	key.hsm = h;
	key.label = ROWMAC_LABEL;
	if (found) {
		st->ops->set_row_mac(st, mac_with_token, NULL);
		return 0;
	}
	if (srv_hsm_mac_key_find(h, ROWMAC_LABEL_NEW, &found) != SRV_HSM_OK ||
	    (!found && srv_hsm_mac_key_create(h, ROWMAC_LABEL_NEW) != SRV_HSM_OK)) {
		snprintf(err, errlen, "cannot create the row MAC key in the token");
		return -1;
	}
	key.label = ROWMAC_LABEL_NEW;
	st->ops->set_row_mac(st, mac_with_token, NULL);
	if (st->ops->seal_rows(st, &n) != SRV_ST_OK) {
		snprintf(err, errlen, "cannot seal the database's rows with the row MAC key");
		return -1;
	}
	if (srv_hsm_mac_key_relabel(h, ROWMAC_LABEL_NEW, ROWMAC_LABEL) != SRV_HSM_OK) {
		snprintf(err, errlen, "cannot relabel the row MAC key");
		return -1;
	}
	key.label = ROWMAC_LABEL;
	rs_info("row MAC key %s created in the token; %zu existing row%s sealed", ROWMAC_LABEL, n,
		n == 1 ? "" : "s");
	return 0;
}
