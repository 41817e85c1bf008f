/* Life cycle: every C_Initialize argument variant, configuration sources and
 * refusals, C_GetInfo, C_GetInterfaceList / C_GetInterface for 2.40 and 3.0
 * with every 3.0 entry callable, the exported symbols, fork (the child
 * re-initialises without C_Finalize and signs) and a host that never calls
 * C_Finalize. */
#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/unit/tap.h"

#include "modtest.h"

static fake_server *f;
static const char *conf;
static int mutex_calls;
static const unsigned char msg[] = "init";

static CK_RV mx_create(void **m)
{
	mutex_calls++;
	*m = malloc(1);
	return CKR_OK;
}
static CK_RV mx_destroy(void *m)
{
	mutex_calls++;
	free(m);
	return CKR_OK;
}
static CK_RV mx_lock(void *m)
{
	(void)m;
	mutex_calls++;
	return CKR_OK;
}
static CK_RV mx_unlock(void *m)
{
	(void)m;
	mutex_calls++;
	return CKR_OK;
}

static int sign_ok(void)
{
	CK_SESSION_HANDLE s = mt_open(FAKE_EC);
	CK_OBJECT_HANDLE k = mt_find(s, CKO_PRIVATE_KEY);
	CK_MECHANISM m = {CKM_ECDSA_SHA256, NULL, 0};
	unsigned char sig[64];
	CK_ULONG n = sizeof(sig);
	int good = mt_sign(s, k, &m, msg, sizeof(msg), sig, &n) == CKR_OK &&
		   mt_verify(fake_signer_cert(f, FAKE_EC), &m, msg, sizeof(msg), sig, n);

	p11->C_CloseSession(s);
	return good;
}

static void test_before_init(void)
{
	CK_ULONG n = 0;
	CK_INFO info;

	ok(p11->C_GetSlotList(CK_FALSE, NULL, &n) == CKR_CRYPTOKI_NOT_INITIALIZED,
	   "slot_list_before_initialize_is_not_initialized");
	ok(p11->C_GetInfo(&info) == CKR_CRYPTOKI_NOT_INITIALIZED,
	   "get_info_before_initialize_is_not_initialized");
	ok(p11->C_Finalize(NULL) == CKR_CRYPTOKI_NOT_INITIALIZED,
	   "finalize_before_initialize_is_not_initialized");
}

/* The configuration with "localhost" instead of 127.0.0.1. */
static const char *localhost_conf(void)
{
	static char path[256];
	char text[512];

	snprintf(path, sizeof(path), "%s/localhost.conf", mt_dir());
	snprintf(text, sizeof(text),
		 "url = https://localhost:%u\nca_file = %s/tls-ca.pem\nlog_level = error\n"
		 "request_timeout = %d\n",
		 fake_port(f), mt_dir(), mt_request_timeout());
	mt_write_file(path, text, 0600);
	return path;
}

static void test_variants(void)
{
	CK_C_INITIALIZE_ARGS a;
	CK_INFO info;
	int before;

	setenv("RSIGN_PKCS11_CONF", conf, 1);
	before = fake_count(f, CNT_REQUESTS);
	ok(p11->C_Initialize(NULL) == CKR_OK, "initialize_null_reads_rsign_pkcs11_conf");
	ok(fake_count(f, CNT_REQUESTS) == before, "initialize_makes_no_network_call");
	ok(p11->C_Initialize(NULL) == CKR_CRYPTOKI_ALREADY_INITIALIZED,
	   "second_initialize_is_already_initialized");
	ok(p11->C_GetInfo(&info) == CKR_OK && info.cryptokiVersion.major == 2 &&
		   info.cryptokiVersion.minor == 40 &&
		   memcmp(info.manufacturerID, "rsign ", 6) == 0,
	   "get_info_reports_2_40_and_rsign");
	ok(sign_ok(), "signs_after_initialize_null");
	ok(p11->C_Finalize((void *)1) == CKR_ARGUMENTS_BAD,
	   "finalize_with_reserved_is_arguments_bad");
	ok(p11->C_Finalize(NULL) == CKR_OK, "finalize");

	memset(&a, 0, sizeof(a));
	ok(p11->C_Initialize(&a) == CKR_OK && sign_ok() && p11->C_Finalize(NULL) == CKR_OK,
	   "initialize_with_empty_args");
	unsetenv("RSIGN_PKCS11_CONF");
	a.flags = CKF_OS_LOCKING_OK;
	a.pReserved = (void *)conf;
	ok(p11->C_Initialize(&a) == CKR_OK && sign_ok() && p11->C_Finalize(NULL) == CKR_OK,
	   "initialize_os_locking_without_callbacks_and_path_in_reserved");
	a.CreateMutex = mx_create;
	a.DestroyMutex = mx_destroy;
	a.LockMutex = mx_lock;
	a.UnlockMutex = mx_unlock;
	ok(p11->C_Initialize(&a) == CKR_OK && sign_ok() && p11->C_Finalize(NULL) == CKR_OK,
	   "initialize_os_locking_with_callbacks");
	ok(mutex_calls == 0, "os_locking_used_instead_of_the_callbacks");
	a.flags = 0;
	ok(p11->C_Initialize(&a) == CKR_CANT_LOCK, "callbacks_without_os_locking_is_cant_lock");
	a.flags = CKF_OS_LOCKING_OK;
	a.LockMutex = NULL;
	ok(p11->C_Initialize(&a) == CKR_ARGUMENTS_BAD, "some_callbacks_only_is_arguments_bad");
	memset(&a, 0, sizeof(a));
	a.flags = CKF_LIBRARY_CANT_CREATE_OS_THREADS;
	a.pReserved = (void *)conf;
	ok(p11->C_Initialize(&a) == CKR_OK && sign_ok() && p11->C_Finalize(NULL) == CKR_OK,
	   "initialize_library_cant_create_os_threads");
	a.flags = CKF_LIBRARY_CANT_CREATE_OS_THREADS | CKF_OS_LOCKING_OK;
	ok(p11->C_Initialize(&a) == CKR_OK && sign_ok() && p11->C_Finalize(NULL) == CKR_OK,
	   "initialize_cant_create_threads_with_os_locking");
	/* a host name: resolved in the caller's thread, not libcurl's */
	a.pReserved = (void *)localhost_conf();
	ok(p11->C_Initialize(&a) == CKR_OK && sign_ok() && p11->C_Finalize(NULL) == CKR_OK,
	   "cant_create_threads_resolves_a_host_name_itself");
}

static void test_config(void)
{
	char err[4096], path[256], text[512];

	ok(mt_init_capture(mt_conf(f, NULL, 0620), err, sizeof(err)) == CKR_GENERAL_ERROR &&
		   strstr(err, "writable by group or others"),
	   "group_writable_config_refused_with_a_log_line");
	ok(mt_init(mt_conf(f, NULL, 0602)) == CKR_GENERAL_ERROR, "world_writable_config_refused");
	snprintf(path, sizeof(path), "%s/missing.conf", mt_dir());
	ok(mt_init(path) == CKR_GENERAL_ERROR, "missing_named_config_is_general_error");
	ok(mt_init_capture(mt_conf(f, "colour = blue\n", 0600), err, sizeof(err)) ==
			   CKR_GENERAL_ERROR &&
		   strstr(err, ".conf:7") && strstr(err, "colour"),
	   "unknown_setting_refused_naming_file_and_line");
	ok(mt_init(mt_conf(f, "refresh_interval = -1\n", 0600)) == CKR_GENERAL_ERROR,
	   "out_of_range_setting_refused");
	snprintf(path, sizeof(path), "%s/http.conf", mt_dir());
	mt_write_file(path, "url = http://signing.example.com\n", 0600);
	ok(mt_init(path) == CKR_GENERAL_ERROR, "plain_http_off_loopback_refused");
	mt_write_file(path, "url = http://127.0.0.1:1\n", 0600);
	ok(mt_init(path) == CKR_OK && p11->C_Finalize(NULL) == CKR_OK,
	   "plain_http_on_loopback_accepted");

	/* url from RSIGN_URL when the file names none */
	snprintf(path, sizeof(path), "%s/nourl.conf", mt_dir());
	snprintf(text, sizeof(text), "ca_file = %s/tls-ca.pem\n", mt_dir());
	mt_write_file(path, text, 0644);
	snprintf(text, sizeof(text), "https://127.0.0.1:%u", fake_port(f));
	setenv("RSIGN_URL", text, 1);
	ok(mt_init(path) == CKR_OK && sign_ok() && p11->C_Finalize(NULL) == CKR_OK,
	   "url_from_rsign_url_environment");
	unsetenv("RSIGN_URL");
	snprintf(path, sizeof(path), "%s/conf/rsign-pkcs11.conf", MT_SRCDIR);
	ok(mt_init(path) == CKR_OK && p11->C_Finalize(NULL) == CKR_OK,
	   "example_configuration_is_accepted");
	if (access("/etc/rsign/pkcs11.conf", F_OK) != 0) {
		CK_ULONG n = 9;

		ok(p11->C_Initialize(NULL) == CKR_OK &&
			   p11->C_GetSlotList(CK_FALSE, NULL, &n) == CKR_OK && n == 0 &&
			   p11->C_Finalize(NULL) == CKR_OK,
		   "no_configuration_at_all_initializes_with_no_slots");
	} else {
		skip("/etc/rsign/pkcs11.conf exists",
		     "no_configuration_at_all_initializes_with_no_slots");
	}
}

/* The server URL is judged after parsing (include/rsign/url.h). */
static const struct url_case {
	const char *name;
	const char *url; /* %u: a port */
	int accepted;
} url_cases[] = {
	{"https_loopback", "https://127.0.0.1:%u", 1},
	{"https_name_with_path", "https://signing.example.com:%u/prefix/", 1},
	{"http_127_0_0_1", "http://127.0.0.1:%u", 1},
	{"http_127_0_0_2", "http://127.0.0.2:%u", 1},
	{"http_localhost", "http://localhost:%u", 1},
	{"http_ipv6_loopback", "http://[::1]:%u", 1},
	{"http_userinfo_to_loopback", "http://localhost:1@127.0.0.2:%u", 0},
	{"http_userinfo_to_a_remote_host", "http://localhost:1@signing.example.com:%u", 0},
	{"https_user", "https://user@127.0.0.1:%u", 0},
	{"https_user_and_password", "https://user:secret@127.0.0.1:%u", 0},
	{"http_name_starting_127", "http://127.0.0.1.example.com:%u", 0},
	{"http_private_address", "http://10.1.2.3:%u", 0},
	{"http_ipv6_not_loopback", "http://[::2]:%u", 0},
	{"other_scheme", "ftp://127.0.0.1:%u", 0},
	{"no_scheme", "127.0.0.1:%u", 0},
	{"query", "https://127.0.0.1:%u/?x=1", 0},
	{"fragment", "https://127.0.0.1:%u/#x", 0},
};

/* A listener on 127.0.0.2 and a module told to use
 * http://localhost:1@127.0.0.2:PORT: that URL reads as localhost but goes to
 * 127.0.0.2. It is refused, and no byte (no bearer token) reaches the
 * listener, not even when slots are asked for. */
static void test_url_user_information(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);
	char path[256], text[256], err[4096], got[2048] = "";
	struct pollfd pfd;
	CK_ULONG n = 0;
	int l, c;
	CK_RV rv;

	a.sin_addr.s_addr = htonl(0x7f000002);
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(l, 4) != 0 ||
	    getsockname(l, (struct sockaddr *)&a, &alen) != 0) {
		skip("cannot listen on 127.0.0.2", "url_with_user_information_is_refused");
		skip("cannot listen on 127.0.0.2", "url_with_user_information_sends_no_token");
		if (l >= 0)
			close(l);
		return;
	}
	snprintf(path, sizeof(path), "%s/userinfo.conf", mt_dir());
	snprintf(text, sizeof(text),
		 "url = http://localhost:1@127.0.0.2:%u\nrequest_timeout = %d\n", ntohs(a.sin_port),
		 mt_request_timeout());
	mt_write_file(path, text, 0600);
	rv = mt_init_capture(path, err, sizeof(err));
	ok(rv == CKR_GENERAL_ERROR && strstr(err, "user information"),
	   "url_with_user_information_is_refused");
	p11->C_GetSlotList(CK_FALSE, NULL, &n); /* the old module asked 127.0.0.2 for slots here */
	if (rv == CKR_OK)
		p11->C_Finalize(NULL);
	pfd.fd = l;
	pfd.events = POLLIN;
	c = poll(&pfd, 1, 0) == 1 ? accept(l, NULL, NULL) : -1;
	if (c >= 0) {
		ssize_t r = recv(c, got, sizeof(got) - 1, MSG_DONTWAIT);

		got[r > 0 ? r : 0] = '\0';
		close(c);
	}
	ok(c < 0, "url_with_user_information_sends_no_token");
	if (c >= 0)
		printf("# 127.0.0.2 received: %.200s\n", got);
	close(l);
}

static void test_urls(void)
{
	char path[256], text[512], url[256];

	snprintf(path, sizeof(path), "%s/url.conf", mt_dir());
	for (size_t i = 0; i < TAP_COUNT(url_cases); i++) {
		CK_RV rv;

		const char *pat = url_cases[i].url, *at = strstr(pat, "%u");

		snprintf(url, sizeof(url), "%.*s%u%s", (int)(at - pat), pat, fake_port(f), at + 2);
		snprintf(text, sizeof(text), "url = \"%s\"\n", url); /* # is no comment */
		mt_write_file(path, text, 0600);
		rv = mt_init(path);
		if (rv == CKR_OK)
			p11->C_Finalize(NULL);
		ok(rv == (url_cases[i].accepted ? CKR_OK : CKR_GENERAL_ERROR), "url_%s_%s",
		   url_cases[i].name, url_cases[i].accepted ? "accepted" : "refused");
	}
	test_url_user_information();
}

static void test_interfaces(void)
{
	CK_C_GetInterfaceList list = (CK_C_GetInterfaceList)dlsym(mt_dl, "C_GetInterfaceList");
	CK_C_GetInterface get = (CK_C_GetInterface)dlsym(mt_dl, "C_GetInterface");
	CK_INTERFACE ifs[4], *it = NULL;
	CK_VERSION v240 = {2, 40}, v30 = {3, 0}, v31 = {3, 1};
	CK_FUNCTION_LIST_3_0 *l3;
	CK_FUNCTION_LIST *l2;
	CK_ULONG n = 0, i, count;
	CK_INFO info;
	void (**fp)(void);
	int all = 1, rvs = 1;

	ok(list && get, "get_interface_list_and_get_interface_exported");
	ok(dlsym(mt_dl, "C_Sign") == NULL && dlsym(mt_dl, "C_Initialize") == NULL &&
		   dlsym(mt_dl, "rs_buf_init") == NULL && dlsym(mt_dl, "mod_enter") == NULL,
	   "nothing_else_is_exported");
	if (!list || !get)
		tap_bail("the module exports no C_GetInterfaceList/C_GetInterface");
	ok(list(NULL, &n) == CKR_OK && n == 2, "interface_list_counts_two");
	n = 1;
	ok(list(ifs, &n) == CKR_BUFFER_TOO_SMALL && n == 2, "interface_list_short_buffer");
	ok(list(ifs, &n) == CKR_OK && strcmp((char *)ifs[0].pInterfaceName, "PKCS 11") == 0 &&
		   ((CK_VERSION *)ifs[0].pFunctionList)->major == 3 &&
		   ((CK_VERSION *)ifs[1].pFunctionList)->major == 2,
	   "interface_list_offers_3_0_then_2_40");
	ok(get(NULL, NULL, &it, 0) == CKR_OK && ((CK_VERSION *)it->pFunctionList)->major == 3,
	   "get_interface_default_is_3_0");
	ok(get((CK_UTF8CHAR_PTR) "PKCS 11", &v240, &it, 0) == CKR_OK &&
		   it->pFunctionList == (void *)p11,
	   "get_interface_2_40_is_the_function_list");
	ok(get((CK_UTF8CHAR_PTR) "PKCS 11", &v30, &it, 0) == CKR_OK, "get_interface_3_0");
	l3 = it->pFunctionList;
	ok(get((CK_UTF8CHAR_PTR) "PKCS 11", &v31, &it, 0) == CKR_ARGUMENTS_BAD &&
		   get((CK_UTF8CHAR_PTR) "Vendor", NULL, &it, 0) == CKR_ARGUMENTS_BAD &&
		   get(NULL, NULL, &it, CKF_INTERFACE_FORK_SAFE) == CKR_ARGUMENTS_BAD,
	   "get_interface_unknown_version_name_or_flags_refused");

	/* Every entry of both lists is set. */
	count = (sizeof(CK_FUNCTION_LIST_3_0) - offsetof(CK_FUNCTION_LIST_3_0, C_Initialize)) /
		sizeof(void *);
	fp = (void (**)(void)) & l3->C_Initialize;
	for (i = 0; i < count; i++)
		all = all && fp[i] != NULL;
	l2 = p11;
	fp = (void (**)(void)) & l2->C_Initialize;
	for (i = 0; i < 68; i++)
		all = all && fp[i] != NULL;
	ok(all && count == 92, "every_entry_of_both_lists_is_set");

	ok(mt_init(conf) == CKR_OK, "initialize_for_3_0_calls");
	ok(l3->C_GetInfo(&info) == CKR_OK && info.cryptokiVersion.major == 3 &&
		   info.cryptokiVersion.minor == 0,
	   "3_0_get_info_reports_3_0");
	rvs = l3->C_SessionCancel(0, 0) == CKR_SESSION_HANDLE_INVALID &&
	      l3->C_MessageEncryptInit(0, NULL, 0) == CKR_FUNCTION_NOT_SUPPORTED &&
	      l3->C_EncryptMessage(0, NULL, 0, NULL, 0, NULL, 0, NULL, NULL) ==
		      CKR_FUNCTION_NOT_SUPPORTED &&
	      l3->C_EncryptMessageBegin(0, NULL, 0, NULL, 0) == CKR_FUNCTION_NOT_SUPPORTED &&
	      l3->C_EncryptMessageNext(0, NULL, 0, NULL, 0, NULL, NULL, 0) ==
		      CKR_FUNCTION_NOT_SUPPORTED &&
	      l3->C_MessageEncryptFinal(0) == CKR_FUNCTION_NOT_SUPPORTED &&
	      l3->C_MessageDecryptInit(0, NULL, 0) == CKR_FUNCTION_NOT_SUPPORTED &&
	      l3->C_DecryptMessage(0, NULL, 0, NULL, 0, NULL, 0, NULL, NULL) ==
		      CKR_FUNCTION_NOT_SUPPORTED &&
	      l3->C_DecryptMessageBegin(0, NULL, 0, NULL, 0) == CKR_FUNCTION_NOT_SUPPORTED &&
	      l3->C_DecryptMessageNext(0, NULL, 0, NULL, 0, NULL, NULL, 0) ==
		      CKR_FUNCTION_NOT_SUPPORTED &&
	      l3->C_MessageDecryptFinal(0) == CKR_FUNCTION_NOT_SUPPORTED &&
	      l3->C_MessageSignInit(0, NULL, 0) == CKR_FUNCTION_NOT_SUPPORTED &&
	      l3->C_SignMessage(0, NULL, 0, NULL, 0, NULL, NULL) == CKR_FUNCTION_NOT_SUPPORTED &&
	      l3->C_SignMessageBegin(0, NULL, 0) == CKR_FUNCTION_NOT_SUPPORTED &&
	      l3->C_SignMessageNext(0, NULL, 0, NULL, 0, NULL, NULL) ==
		      CKR_FUNCTION_NOT_SUPPORTED &&
	      l3->C_MessageSignFinal(0) == CKR_FUNCTION_NOT_SUPPORTED &&
	      l3->C_MessageVerifyInit(0, NULL, 0) == CKR_FUNCTION_NOT_SUPPORTED &&
	      l3->C_VerifyMessage(0, NULL, 0, NULL, 0, NULL, 0) == CKR_FUNCTION_NOT_SUPPORTED &&
	      l3->C_VerifyMessageBegin(0, NULL, 0) == CKR_FUNCTION_NOT_SUPPORTED &&
	      l3->C_VerifyMessageNext(0, NULL, 0, NULL, 0, NULL, 0) == CKR_FUNCTION_NOT_SUPPORTED &&
	      l3->C_MessageVerifyFinal(0) == CKR_FUNCTION_NOT_SUPPORTED &&
	      l3->C_LoginUser(0, CKU_USER, NULL, 0, NULL, 0) == CKR_SESSION_HANDLE_INVALID &&
	      l3->C_GetInterfaceList(NULL, &n) == CKR_OK &&
	      l3->C_GetInterface(NULL, NULL, &it, 0) == CKR_OK;
	ok(rvs, "every_3_0_entry_is_callable");
	ok(l2->C_DigestKey(0, 0) == CKR_FUNCTION_NOT_SUPPORTED &&
		   l2->C_EncryptInit(0, NULL, 0) == CKR_FUNCTION_NOT_SUPPORTED &&
		   l2->C_GetFunctionStatus(0) == CKR_FUNCTION_NOT_PARALLEL &&
		   l2->C_WaitForSlotEvent(0, NULL, NULL) == CKR_FUNCTION_NOT_SUPPORTED,
	   "functions_not_offered_are_function_not_supported");
	ok(p11->C_Finalize(NULL) == CKR_OK, "finalize_after_3_0_calls");
}

/* The fork tests run against the fake server in a process of its own, so
 * that forked children inherit no server threads (nor their OpenSSL thread
 * state, which leak checkers would report in the children). */
static pid_t serve_elsewhere(void)
{
	int fds[2];
	char c = 0;
	pid_t pid;

	fake_stop(f);
	if (pipe(fds) < 0)
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		if (fake_start(f) < 0 || write(fds[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(fds[1]);
	if (read(fds[0], &c, 1) != 1)
		pid = -1;
	close(fds[0]);
	return pid;
}

static void test_fork(void)
{
	CK_ULONG n = 0;
	int status = -1, code, fds[2], signed_ok;
	char c;
	pid_t pid;

	pid_t server = serve_elsewhere();

	ok(server > 0, "fake_server_in_its_own_process");
	ok(mt_init(conf) == CKR_OK && sign_ok(), "parent_signs_before_fork");
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		code = 0;
		if (p11->C_GetSlotList(CK_TRUE, NULL, &n) != CKR_CRYPTOKI_NOT_INITIALIZED)
			code |= 1;
		if (mt_init(conf) != CKR_OK)
			code |= 2;
		if (!sign_ok())
			code |= 4;
		if (p11->C_Finalize(NULL) != CKR_OK)
			code |= 8;
		exit(code);
	}
	waitpid(pid, &status, 0);
	code = WIFEXITED(status) ? WEXITSTATUS(status) : 99;
	ok(!(code & 1), "forked_child_is_not_initialized_until_it_initializes");
	ok(!(code & 2), "forked_child_initializes_without_finalize");
	ok(!(code & 4), "forked_child_signs");
	ok(!(code & 8), "forked_child_finalizes");
	ok(sign_ok(), "parent_keeps_signing_after_the_child");

	/* A host that never calls C_Finalize: it signs, then exit() runs the
	 * atexit handlers (OpenSSL's, libcurl's) with the module still
	 * initialised; its state stays reachable, so leak checkers stay quiet. */
	fflush(stdout);
	if (pipe(fds) == 0 && (pid = fork()) == 0) {
		close(fds[0]);
		if (mt_init(conf) == CKR_OK && sign_ok() && write(fds[1], "s", 1) != 1)
			_exit(3);
		exit(0);
	}
	close(fds[1]);
	signed_ok = read(fds[0], &c, 1) == 1;
	close(fds[0]);
	waitpid(pid, &status, 0);
	ok(signed_ok && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "host_that_never_finalizes_exits_cleanly");
	ok(p11->C_Finalize(NULL) == CKR_OK, "parent_finalizes");
	if (server > 0) {
		kill(server, SIGTERM);
		waitpid(server, NULL, 0);
	}
}

int main(void)
{
	CK_C_GetFunctionList gfl;

	plan(1 + 3 + 16 + 10 + TAP_COUNT(url_cases) + 2 + 15 + 9);
	mt_clear_env();
	setenv("RSIGN_TOKEN", FAKE_USER_TOKEN, 1);
	f = mt_fake(0);
	mt_load();
	conf = strdup(mt_conf(f, NULL, 0600));
	gfl = (CK_C_GetFunctionList)dlsym(mt_dl, "C_GetFunctionList");
	ok(gfl && gfl(NULL) == CKR_ARGUMENTS_BAD, "get_function_list_null_is_arguments_bad");
	test_before_init();
	test_variants();
	test_config();
	test_urls();
	test_interfaces();
	test_fork();
	mt_unload();
	fake_free(f);
	free((void *)conf);
	return tap_done();
}
