/* Telling systemd (Type=notify) that rsignd is ready, reloading or stopping. */
#ifndef SRV_RSIGND_NOTIFY_H
#define SRV_RSIGND_NOTIFY_H

/* Sends state ("READY=1\nSTATUS=...", "RELOADING=1", "STOPPING=1") to
 * $NOTIFY_SOCKET; a no-op when it is unset, one WARN line on failure. */
void srv_notify(const char *state);

#endif
