/* Runs the fake rsignd on its own for trying the module by hand:
 *   tests/module/fake-rsignd DIR [EXTRA_SIGNERS]
 * writes DIR/pkcs11.conf and DIR/tls-ca.pem, prints the exports to use with
 * pkcs11-tool, and serves until interrupted. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake_rsignd.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	char path[512];
	fake_server *f;
	FILE *fp;

	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR [EXTRA_SIGNERS]\n", argv[0]);
		return 2;
	}
	f = fake_new(argc > 2 ? atoi(argv[2]) : 0);
	if (!f || fake_start(f) < 0) {
		fprintf(stderr, "fake rsignd did not start\n");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/tls-ca.pem", argv[1]);
	fp = fopen(path, "w");
	if (!fp)
		return 1;
	fputs(fake_tls_pem(f), fp);
	fclose(fp);
	snprintf(path, sizeof(path), "%s/pkcs11.conf", argv[1]);
	fp = fopen(path, "w");
	if (!fp)
		return 1;
	fprintf(fp, "url = https://127.0.0.1:%u\nca_file = %s/tls-ca.pem\nlog_level = info\n",
		fake_port(f), argv[1]);
	fclose(fp);
	chmod(path, 0600);
	printf("export RSIGN_PKCS11_CONF=%s\n", path);
	printf("export RSIGN_TOKEN=%s\n", FAKE_USER_TOKEN);
	printf("# or: export RSIGN_CLIENT_ID=%s RSIGN_CLIENT_SECRET=%s\n", FAKE_CLIENT_ID,
	       FAKE_CLIENT_SECRET);
	fflush(stdout);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	while (!stop)
		pause();
	fake_free(f);
	return 0;
}
