/*
 * fuzz_imap_token.c - libFuzzer target for the IMAP tokenizer.
 *
 * Not only "does not crash": it checks the promises callers rely on. A parsed
 * command points only into the buffer, lists balance within the depth limit,
 * a failure leaves nothing but (maybe) the tag, and every value the parser
 * returns comes back unchanged after imap_quote() and a second parse.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -Ilib -Igateway \
 *        tests/fuzz/fuzz_imap_token.c lib/imap_token.c
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap_token.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Raw pointer arithmetic: is [p, p+len) inside [buf, buf+size)? */
static int inside(const char *buf, size_t size, const char *p, size_t len)
{
	return p >= buf && (size_t)(p - buf) <= size && len <= size - (size_t)(p - buf);
}

static void check_line_literal(const char *buf, size_t size)
{
	uint64_t lit = 1;

	switch (imap_line_literal(buf, size, &lit)) {
	case IMAP_LITERAL_SYNC:
	case IMAP_LITERAL_NONSYNC:
		CHECK(lit <= UINT32_MAX);
		CHECK(size >= 4 && buf[size - 1] == '}');
		break;
	case IMAP_LITERAL_NONE:
	case IMAP_LITERAL_INVALID:
		CHECK(lit == 0);
		break;
	}
}

static void check_success(const char *buf, size_t size, const struct imap_command *cmd)
{
	size_t i, depth = 0;

	CHECK(cmd->tag == buf && cmd->tag_len > 0);
	CHECK(cmd->name != NULL && cmd->name_len > 0);
	CHECK(inside(buf, size, cmd->name, cmd->name_len));
	CHECK(cmd->nargs <= IMAP_MAX_ARGS);
	for (i = 0; i < cmd->nargs; i++) {
		const struct imap_token *t = &cmd->args[i];

		CHECK(inside(buf, size, t->value, t->len));
		switch (t->type) {
		case IMAP_TOKEN_LIST_BEGIN:
			CHECK(++depth <= IMAP_MAX_DEPTH);
			break;
		case IMAP_TOKEN_LIST_END:
			CHECK(depth-- > 0);
			break;
		case IMAP_TOKEN_ATOM:
			CHECK(t->len > 0 && !t->literal);
			CHECK(memchr(t->value, '\0', t->len) == NULL);
			break;
		case IMAP_TOKEN_STRING:
			if (!t->literal) {
				CHECK(memchr(t->value, '\0', t->len) == NULL);
				CHECK(memchr(t->value, '\r', t->len) == NULL);
				CHECK(memchr(t->value, '\n', t->len) == NULL);
			}
			break;
		}
	}
	CHECK(depth == 0);
}

/* Quote every atom and string into "t X v1 v2 ..." and parse that back. */
static void check_requote(const struct imap_command *cmd, size_t size, int nonsync)
{
	size_t cap = 2 * size + 24 * IMAP_MAX_ARGS + 8;
	char *out = malloc(cap);
	struct imap_command again;
	const char *error;
	size_t o = 0, i, j, n;
	bool sync;

	CHECK(out != NULL);
	memcpy(out, "t X", 3);
	o = 3;
	for (i = 0; i < cmd->nargs; i++) {
		const struct imap_token *t = &cmd->args[i];

		if (t->type != IMAP_TOKEN_ATOM && t->type != IMAP_TOKEN_STRING)
			continue;
		out[o++] = ' ';
		n = imap_quote(t->value, t->len, nonsync, out + o, cap - o, &sync);
		CHECK(n > 0);
		CHECK(sync == (!nonsync && out[o] == '{'));
		o += n;
	}
	CHECK(imap_command_parse(out, o, &again, &error) == 0);
	for (i = 0, j = 0; i < cmd->nargs; i++) {
		const struct imap_token *t = &cmd->args[i];

		if (t->type != IMAP_TOKEN_ATOM && t->type != IMAP_TOKEN_STRING)
			continue;
		CHECK(j < again.nargs);
		CHECK(again.args[j].type == IMAP_TOKEN_STRING);
		CHECK(again.args[j].len == t->len);
		CHECK(memcmp(again.args[j].value, t->value, t->len) == 0);
		j++;
	}
	CHECK(j == again.nargs);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Exact-size copy: the parser writes into it and must not read past it. */
	char *buf = malloc(size > 0 ? size : 1);
	struct imap_command cmd;
	const char *error = "unset";

	CHECK(buf != NULL);
	if (size > 0)
		memcpy(buf, data, size);

	check_line_literal(buf, size);

	if (imap_command_parse(buf, size, &cmd, &error) == 0) {
		CHECK(error == NULL);
		check_success(buf, size, &cmd);
		check_requote(&cmd, size, 0);
		check_requote(&cmd, size, 1);
	} else {
		CHECK(error != NULL);
		CHECK(cmd.name == NULL && cmd.name_len == 0 && cmd.nargs == 0);
		CHECK(cmd.tag == NULL || (cmd.tag == buf && cmd.tag_len > 0 && cmd.tag_len <= size));
	}
	free(buf);
	return 0;
}
