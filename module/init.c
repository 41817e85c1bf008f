/* Life cycle: C_Initialize, C_Finalize, C_GetInfo; the global lock; fork
 * detection by pid.
 *
 * C_Initialize reads the configuration and the configured credentials but
 * makes no network call, so it never fails because rsignd is down. The
 * module starts no threads of its own; with CKF_LIBRARY_CANT_CREATE_OS_THREADS
 * it also keeps libcurl from resolving names in a helper thread. In a
 * forked child (the pid differs from the initialising one) every entry point
 * answers CKR_CRYPTOKI_NOT_INITIALIZED until C_Initialize is called again,
 * which then succeeds without C_Finalize (as p11-kit does it) and drops the
 * inherited state; inherited curl handles are abandoned, never used.
 * A pthread_atfork handler keeps the lock consistent across fork. No atexit
 * handler exists: a host that never calls C_Finalize simply exits. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
#include <curl/curl.h>

#include "rsign/ckr.h"
#include "rsign/log.h"

#include "module.h"
#include "http.h"
#include "approval.h"

static pthread_mutex_t global_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_once_failed;

static struct {
	int initialized;
	pid_t pid;
	unsigned long generation;
	mod_config conf;
	mod_cred cred; /* configured credentials; empty when the PIN carries them */
} g;

void mod_lock(void)
{
	pthread_mutex_lock(&global_lock);
}

void mod_unlock(void)
{
	pthread_mutex_unlock(&global_lock);
}

/* One condition on the global lock, for "the state some thread is fetching
 * has arrived" (the first signer list). */
static pthread_cond_t global_cond = PTHREAD_COND_INITIALIZER;

int mod_wait_inlock(long long deadline_ms)
{
	struct timespec ts = {.tv_sec = deadline_ms / 1000,
			      .tv_nsec = (deadline_ms % 1000) * 1000000};
	return pthread_cond_timedwait(&global_cond, &global_lock, &ts) == 0 ? 0 : -1;
}

void mod_broadcast_inlock(void)
{
	pthread_cond_broadcast(&global_cond);
}

/* Both module locks across fork(2), the global one first (as everywhere),
 * so a child never inherits one held by a thread it does not have. */
static void atfork_prepare(void)
{
	mod_lock();
	mod_http_fork_prepare();
}

static void atfork_release(void)
{
	mod_http_fork_release();
	mod_unlock();
}

/* Once per process: libcurl's global state (never cleaned up: another
 * library in the host may use libcurl, and a host that skips C_Finalize must
 * still exit cleanly) and the fork handlers. */
static void init_once(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    pthread_atfork(atfork_prepare, atfork_release, atfork_release) != 0)
		global_once_failed = 1;
}

static int initialized_here_inlock(void)
{
	/* rs_pid: no getpid(2) on every entry point, a fork's child its own */
	return g.initialized && g.pid == rs_pid();
}

CK_RV mod_enter(void)
{
	mod_lock();
	if (!initialized_here_inlock()) {
		mod_unlock();
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	}
	return CKR_OK;
}

CK_RV mod_reenter(unsigned long gen)
{
	mod_lock();
	if (!initialized_here_inlock() || g.generation != gen)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	return CKR_OK;
}

unsigned long mod_generation_inlock(void)
{
	return g.generation;
}

const mod_config *mod_conf(void)
{
	return &g.conf;
}

mod_cred *mod_configured_cred(void)
{
	return mod_cred_is_set(&g.cred) ? &g.cred : NULL;
}

int mod_login_required(void)
{
	return !mod_cred_is_set(&g.cred);
}

long long mod_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

CK_RV mod_rv(const char *fn, CK_RV rv)
{
	if (rv == CKR_OK)
		rs_debug("%s", fn);
	else
		rs_debug("%s -> %s", fn, rs_ckr_name(rv));
	return rv;
}

void mod_pad(CK_UTF8CHAR *dst, size_t n, const char *src)
{
	size_t len = strlen(src);

	if (len > n)
		len = n;
	memset(dst, ' ', n);
	memcpy(dst, src, len);
}

/* Everything C_Initialize set up; used by C_Finalize and, in a forked child,
 * to drop what the parent left (http is forgotten there, not freed). */
static void teardown_inlock(int forked)
{
	mod_approval_free_inlock();
	mod_sessions_free_inlock();
	mod_slots_free_inlock();
	if (forked)
		mod_http_forget();
	else
		mod_http_free();
	mod_cred_clear(&g.cred);
	mod_config_free(&g.conf);
	rs_log_set_file(NULL);
	g.initialized = 0;
	g.generation++;
}

/* The PKCS#11 argument rules: all four mutex callbacks or none; callbacks
 * without CKF_OS_LOCKING_OK would oblige us to lock with them, which libcurl
 * and OpenSSL cannot, so that case is CKR_CANT_LOCK. pReserved, which the
 * standard leaves NULL, may carry the configuration path. */
static CK_RV check_init_args(const CK_C_INITIALIZE_ARGS *args, const char **path, int *no_threads)
{
	int n;

	*path = NULL;
	*no_threads = args && (args->flags & CKF_LIBRARY_CANT_CREATE_OS_THREADS);
	if (!args)
		return CKR_OK;
	n = !!args->CreateMutex + !!args->DestroyMutex + !!args->LockMutex + !!args->UnlockMutex;
	if (n != 0 && n != 4)
		return CKR_ARGUMENTS_BAD;
	if (n == 4 && !(args->flags & CKF_OS_LOCKING_OK))
		return CKR_CANT_LOCK;
	if (args->pReserved) {
		*path = args->pReserved;
		if (strnlen(*path, 4096) == 4096)
			return CKR_ARGUMENTS_BAD;
	}
	return CKR_OK;
}

/* Returns: CKR_GENERAL_ERROR when the configuration is refused (unreadable,
 * malformed, writable by group or others): the module must not talk to a
 * server someone else may have chosen. */
CK_RV C_Initialize(CK_VOID_PTR pInitArgs)
{
	const char *path;
	int no_threads;
	CK_RV rv;

	rv = check_init_args(pInitArgs, &path, &no_threads);
	if (rv != CKR_OK)
		return mod_rv(__func__, rv);
	pthread_once(&global_once, init_once);
	if (global_once_failed)
		return mod_rv(__func__, CKR_GENERAL_ERROR);

	mod_lock();
	if (initialized_here_inlock()) {
		rv = CKR_CRYPTOKI_ALREADY_INITIALIZED;
		goto out;
	}
	if (g.initialized) {
		rs_debug("forked child %ld re-initialises", (long)getpid());
		teardown_inlock(1);
	}
	if (mod_config_load(path, &g.conf) < 0) {
		rs_log_set_file(NULL);
		rv = CKR_GENERAL_ERROR;
		goto out;
	}
	if (mod_cred_load_configured(&g.conf, &g.cred) < 0 ||
	    mod_http_init(&g.conf, no_threads) < 0) {
		rv = CKR_GENERAL_ERROR;
		goto fail;
	}
	g.initialized = 1;
	g.pid = (pid_t)rs_pid();
	g.generation++;
	if (mod_slots_init_inlock() < 0) {
		rv = CKR_HOST_MEMORY;
		goto fail;
	}
	rs_debug("initialised: %s, %s", g.conf.path ? g.conf.path : "no configuration file",
		 mod_cred_is_set(&g.cred) ? "configured credentials" : "credentials from the PIN");
	rv = CKR_OK;
	goto out;
fail:
	teardown_inlock(0);
out:
	mod_unlock();
	return mod_rv(__func__, rv);
}

CK_RV C_Finalize(CK_VOID_PTR pReserved)
{
	CK_RV rv;

	if (pReserved)
		return mod_rv(__func__, CKR_ARGUMENTS_BAD);
	rv = mod_enter();
	if (rv != CKR_OK)
		return mod_rv(__func__, rv);
	teardown_inlock(0);
	mod_unlock();
	return mod_rv(__func__, CKR_OK);
}

CK_RV mod_get_info(CK_INFO_PTR pInfo, CK_BYTE major, CK_BYTE minor)
{
	CK_RV rv;

	if (!pInfo)
		return CKR_ARGUMENTS_BAD;
	rv = mod_enter();
	if (rv != CKR_OK)
		return rv;
	memset(pInfo, 0, sizeof(*pInfo));
	pInfo->cryptokiVersion.major = major;
	pInfo->cryptokiVersion.minor = minor;
	mod_pad(pInfo->manufacturerID, sizeof(pInfo->manufacturerID), MOD_MANUFACTURER);
	mod_pad(pInfo->libraryDescription, sizeof(pInfo->libraryDescription),
		"rsign remote signing");
	pInfo->libraryVersion.major = MOD_VERSION_MAJOR;
	pInfo->libraryVersion.minor = MOD_VERSION_MINOR;
	mod_unlock();
	return CKR_OK;
}

CK_RV C_GetInfo(CK_INFO_PTR pInfo)
{
	return mod_rv(__func__, mod_get_info(pInfo, 2, 40));
}
