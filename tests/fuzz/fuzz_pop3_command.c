/*
 * fuzz_pop3_command.c - libFuzzer target for the POP3 command splitter and
 * the front end's decision table.
 *
 * Not only "does not crash": it checks the promises pop3_frontend.c relies on. A
 * parsed name points at the start of the buffer and is 1-4 letters whose id
 * matches its spelling; arguments lie inside the buffer and hold no NUL or
 * control byte; an accepted line is within the RFC 2449 length; split words
 * are non-empty and space-free; and whatever the bytes, no credential
 * command is ever allowed to run on a connection that may not carry
 * credentials.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -Ilib -Igateway \
 *        tests/fuzz/fuzz_pop3_command.c gateway/pop3_command.c
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pop3_command.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Raw pointer arithmetic: is [p, p+len) inside [buf, buf+size]? */
static int inside(const char *buf, size_t size, const char *p, size_t len)
{
	return p >= buf && (size_t)(p - buf) <= size && len <= size - (size_t)(p - buf);
}

static bool same_name(const char *name, size_t len, const char *known)
{
	if (strlen(known) != len)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i] >= 'a' && name[i] <= 'z' ? (char)(name[i] - 'a' + 'A') : name[i];

		if (c != known[i])
			return false;
	}
	return true;
}

static void check_name(const char *buf, size_t size, const struct pop3_command *cmd)
{
	CHECK(cmd->name == buf);
	CHECK(cmd->name_len >= 1 && cmd->name_len <= POP3_NAME_MAX && cmd->name_len <= size);
	for (size_t i = 0; i < cmd->name_len; i++)
		CHECK((buf[i] >= 'A' && buf[i] <= 'Z') || (buf[i] >= 'a' && buf[i] <= 'z'));
	CHECK(cmd->name_len == size || buf[cmd->name_len] == ' ');
	CHECK((unsigned)cmd->id < POP3_CMD_COUNT);
	if (cmd->id != POP3_CMD_UNKNOWN) {
		CHECK(same_name(cmd->name, cmd->name_len, pop3_command_name(cmd->id)));
	} else {
		for (int id = POP3_CMD_UNKNOWN + 1; id < POP3_CMD_COUNT; id++)
			CHECK(!same_name(cmd->name, cmd->name_len,
					 pop3_command_name((enum pop3_command_id)id)));
	}
	CHECK(inside(buf, size, cmd->args, cmd->args_len));
}

static void check_args(const struct pop3_command *cmd)
{
	struct pop3_arg argv[POP3_MAX_ARGS + 1];
	int n;

	for (size_t i = 0; i < cmd->args_len; i++) {
		unsigned char c = (unsigned char)cmd->args[i];

		CHECK(c >= 0x20 && c != 0x7f);
	}
	memset(argv, 0, sizeof(argv));
	n = pop3_split_args(cmd->args, cmd->args_len, argv, POP3_MAX_ARGS);
	CHECK(n >= -1 && n <= POP3_MAX_ARGS);
	CHECK(argv[POP3_MAX_ARGS].value == NULL);
	CHECK(n != 0 || cmd->args_len == 0);
	for (int i = 0; i < n; i++) {
		CHECK(argv[i].len > 0);
		CHECK(inside(cmd->args, cmd->args_len, argv[i].value, argv[i].len));
		CHECK(memchr(argv[i].value, ' ', argv[i].len) == NULL);
	}
	/* Words and single separators account for every byte. */
	if (n > 0) {
		size_t total = (size_t)n - 1;

		for (int i = 0; i < n; i++)
			total += argv[i].len;
		CHECK(total == cmd->args_len);
	}
}

static void check_decisions(enum pop3_command_id id)
{
	for (int state = 0; state <= POP3_STATE_COUNT; state++) {
		for (int flags = 0; flags < 4; flags++) {
			bool tls = (flags & 1) != 0, allowed = (flags & 2) != 0;
			enum pop3_action a = pop3_decide((enum pop3_state)state, tls, allowed, id);

			CHECK(a <= POP3_ACTION_UNKNOWN);
			if (pop3_takes_credentials(id) && !allowed)
				CHECK(a != POP3_ACTION_RUN);
			if (pop3_takes_credentials(id) && !allowed &&
			    (state == POP3_STATE_AUTHORIZATION || state == POP3_STATE_USER))
				CHECK(a == POP3_ACTION_REFUSE_CLEARTEXT);
			if (a == POP3_ACTION_RUN)
				CHECK(state == POP3_STATE_AUTHORIZATION || state == POP3_STATE_USER);
			if (id == POP3_CMD_STLS && tls)
				CHECK(a != POP3_ACTION_RUN);
			if (id == POP3_CMD_UNKNOWN)
				CHECK(a == POP3_ACTION_UNKNOWN);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Exact-size copy so any read past the end is caught. */
	char *buf = malloc(size > 0 ? size : 1);
	struct pop3_command cmd;
	const char *error = NULL;

	CHECK(buf != NULL);
	if (size > 0)
		memcpy(buf, data, size);

	switch (pop3_command_parse(buf, size, &cmd, &error)) {
	case POP3_PARSE_OK:
		CHECK(size <= POP3_COMMAND_TEXT_MAX);
		check_name(buf, size, &cmd);
		check_args(&cmd);
		check_decisions(cmd.id);
		break;
	case POP3_PARSE_BAD_LINE:
		CHECK(error != NULL && error[0] != '\0');
		check_name(buf, size, &cmd);
		/* Either too long, or some argument byte really is a control byte. */
		if (size <= POP3_COMMAND_TEXT_MAX) {
			bool ctl = false;

			for (size_t i = 0; i < cmd.args_len; i++) {
				unsigned char c = (unsigned char)cmd.args[i];

				ctl = ctl || c < 0x20 || c == 0x7f;
			}
			CHECK(ctl);
		}
		check_decisions(cmd.id);
		break;
	case POP3_PARSE_BAD_NAME:
		CHECK(error != NULL && error[0] != '\0');
		CHECK(cmd.name == NULL && cmd.id == POP3_CMD_UNKNOWN);
		break;
	}
	free(buf);
	return 0;
}
