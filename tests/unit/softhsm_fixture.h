/* One SoftHSM2 token for the C tests that need a real one (test_hsm,
 * test_pki): a private temporary directory with softhsm2.conf and the token
 * store, SOFTHSM2_CONF pointing at it, the token initialised and a pool of
 * sessions logged in, and the directory removed at the end. */
#ifndef RSIGN_SOFTHSM_FIXTURE_H
#define RSIGN_SOFTHSM_FIXTURE_H
#include <stddef.h>

#include "server/hsm/hsm.h"

#define FIXTURE_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define FIXTURE_LABEL "rsign-test"
#define FIXTURE_SO_PIN "so-pin-1234"
#define FIXTURE_PIN "user-pin-1234"

/* Makes /tmp/rsign-test-<name>-XXXXXX with an empty token store and its
 * softhsm2.conf, and sets SOFTHSM2_CONF. 0, or -1 with err set. */
int fixture_softhsm_setup(const char *name, char *err, size_t errlen);
/* The directory of the last setup ("" before one). */
const char *fixture_softhsm_dir(void);
/* Initialises the fixture's token FIXTURE_LABEL and opens a pool of pool
 * sessions logged in with FIXTURE_PIN. The handle, or NULL with err set. */
srv_hsm *fixture_softhsm_token(int pool, char *err, size_t errlen);
/* Removes the directory and everything in it; 0 when it is gone. */
int fixture_softhsm_teardown(void);

#endif
