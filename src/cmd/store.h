/* flaghook(1)'s outbox subcommands: dead, deliveries, attempts, requeue,
 * pending. */
#ifndef FLAGHOOK_CMD_STORE_H
#define FLAGHOOK_CMD_STORE_H

/* Non-zero when `name` is one of the outbox subcommands. */
int fh_store_is_command(const char *name);

/* Runs `flaghook argv[1] ...` (argv[1] an outbox subcommand); returns the
 * exit status: 0, 1 (the store failed) or 2 (usage).  May overwrite the
 * argument of --pg in argv so that ps(1) no longer shows it. */
int fh_store_main(int argc, char **argv);

/* The usage lines of the outbox subcommands, for flaghook --help. */
extern const char fh_store_usage[];

#endif
