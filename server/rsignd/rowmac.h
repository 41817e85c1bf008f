/* The row MAC key at rsignd's start: found in the token, or created and the
 * existing rows sealed with it (rowmac.c says how an interruption resumes). */
#ifndef SRV_ROWMAC_H
#define SRV_ROWMAC_H
#include <stddef.h>
#include "server/hsm/hsm.h"
#include "server/store/store.h"

#define ROWMAC_LABEL "rsign-row-mac"

/* Installs the token's row MAC key in st, creating it (and sealing the rows
 * without a MAC) when the token has none. 0, or -1 + err. */
int srv_rowmac_start(srv_hsm *h, srv_store *st, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
