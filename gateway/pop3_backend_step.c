/*
 * pop3_backend_step.c - the POP3 backend login's states and step rules (see
 * pop3_backend_step.h). Pure functions only.
 */
#include <string.h>

#include "line_word.h"
#include "pop3_backend_step.h"

/* A state or reply class left out of a switch is a warning (an error with -Werror). */
#pragma GCC diagnostic warning "-Wswitch-enum"

static const char *const state_names[] = {
	[POP3_BACKEND_GREETING] = "greeting",
	[POP3_BACKEND_STLS] = "stls",
	[POP3_BACKEND_USER] = "user",
	[POP3_BACKEND_PASS] = "pass",
	[POP3_BACKEND_DONE] = "done",
};
_Static_assert(sizeof(state_names) / sizeof(state_names[0]) == POP3_BACKEND_STATE_COUNT,
	       "every backend POP3 state has a name");

static const char *const reply_names[] = {
	[POP3_BACKEND_REPLY_OK] = "ok",
	[POP3_BACKEND_REPLY_ERR] = "err",
	[POP3_BACKEND_REPLY_ERR_TEMP] = "err-temp",
	[POP3_BACKEND_REPLY_CONTINUATION] = "continuation",
	[POP3_BACKEND_REPLY_INVALID] = "invalid",
};
_Static_assert(sizeof(reply_names) / sizeof(reply_names[0]) == POP3_BACKEND_REPLY_COUNT,
	       "every backend POP3 reply class has a name");

static const char *const move_names[] = {
	[POP3_BACKEND_SEND_MORE] = "send-more",
	[POP3_BACKEND_GO] = "go",
	[POP3_BACKEND_END] = "end",
};
_Static_assert(sizeof(move_names) / sizeof(move_names[0]) == POP3_BACKEND_MOVE_COUNT,
	       "every backend POP3 move has a name");

const char *pop3_backend_state_name(enum pop3_backend_state state)
{
	return (unsigned)state < POP3_BACKEND_STATE_COUNT ? state_names[state] : "invalid";
}

const char *pop3_backend_reply_name(enum pop3_backend_reply reply)
{
	return (unsigned)reply < POP3_BACKEND_REPLY_COUNT ? reply_names[reply] : "invalid";
}

const char *pop3_backend_move_name(enum pop3_backend_move move)
{
	return (unsigned)move < POP3_BACKEND_MOVE_COUNT ? move_names[move] : "invalid";
}

/* Does text (after "-ERR ") open with response code code, or a child of it? */
static bool has_code(const char *text, size_t len, const char *code)
{
	size_t clen = strlen(code);

	/* RFC 2449 codes are hierarchical: [SYS/TEMP] covers [SYS/TEMP/...]. */
	return len > clen + 1 && text[0] == '[' && memcmp(text + 1, code, clen) == 0 &&
	       (text[clen + 1] == ']' || text[clen + 1] == '/');
}

enum pop3_backend_reply pop3_backend_classify(const char *line, size_t len)
{
	if (starts_with_word(line, len, "+OK", WORD_EXACT))
		return POP3_BACKEND_REPLY_OK;
	if (len >= 1 && line[0] == '+')
		return POP3_BACKEND_REPLY_CONTINUATION;
	if (!starts_with_word(line, len, "-ERR", WORD_EXACT))
		return POP3_BACKEND_REPLY_INVALID;
	if (len > 5) {
		const char *text = line + 5;
		size_t tlen = len - 5;

		/*
		 * The backend is busy or the mailbox is locked or the user must
		 * wait (RFC 2449, RFC 3206): nothing says the password is wrong,
		 * so the client must not be told it is.
		 */
		if (has_code(text, tlen, "SYS/TEMP") || has_code(text, tlen, "IN-USE") ||
		    has_code(text, tlen, "LOGIN-DELAY"))
			return POP3_BACKEND_REPLY_ERR_TEMP;
	}
	return POP3_BACKEND_REPLY_ERR;
}

static struct pop3_backend_step go(enum pop3_backend_state next)
{
	return (struct pop3_backend_step){ .move = POP3_BACKEND_GO, .next = next };
}

static struct pop3_backend_step end(enum mg_login_result result, enum pop3_backend_log log)
{
	return (struct pop3_backend_step){ .move = POP3_BACKEND_END, .result = result,
					   .log = log };
}

/* The exchange after the one in state, when it succeeds. */
static enum pop3_backend_state after(enum pop3_backend_state state,
				     const struct pop3_backend_options *options)
{
	switch (state) {
	case POP3_BACKEND_GREETING:
		if (options->stls)
			return POP3_BACKEND_STLS;
		/* fall through */
	case POP3_BACKEND_STLS:
		/* The master login is one exchange: AUTH PLAIN in the PASS state. */
		return options->master ? POP3_BACKEND_PASS : POP3_BACKEND_USER;
	case POP3_BACKEND_USER:
		return POP3_BACKEND_PASS;
	case POP3_BACKEND_PASS:
	case POP3_BACKEND_DONE:
	case POP3_BACKEND_STATE_COUNT:
		break;
	}
	return POP3_BACKEND_DONE;
}

/* After AUTH PLAIN: anything opening with "+" lets the credentials go. */
static struct pop3_backend_step next_continuation(enum pop3_backend_reply reply)
{
	switch (reply) {
	case POP3_BACKEND_REPLY_OK:
	case POP3_BACKEND_REPLY_CONTINUATION:
		return (struct pop3_backend_step){ .move = POP3_BACKEND_SEND_MORE };
	case POP3_BACKEND_REPLY_ERR:
	case POP3_BACKEND_REPLY_ERR_TEMP:
	case POP3_BACKEND_REPLY_INVALID:
	case POP3_BACKEND_REPLY_COUNT:
		break;
	}
	return end(MG_LOGIN_UNAVAILABLE, POP3_BACKEND_LOG_UNEXPECTED);
}

/* The status answering the state's command; refused: what a -ERR means there. */
static struct pop3_backend_step next_answer(enum pop3_backend_state state,
					    enum pop3_backend_reply reply,
					    const struct pop3_backend_options *options,
					    enum mg_login_result refused)
{
	switch (reply) {
	case POP3_BACKEND_REPLY_OK:
		return go(after(state, options));
	case POP3_BACKEND_REPLY_ERR:
		return end(refused, POP3_BACKEND_LOG_REFUSED);
	case POP3_BACKEND_REPLY_ERR_TEMP:
		return end(MG_LOGIN_UNAVAILABLE, POP3_BACKEND_LOG_UNAVAILABLE);
	case POP3_BACKEND_REPLY_CONTINUATION:
	case POP3_BACKEND_REPLY_INVALID:
	case POP3_BACKEND_REPLY_COUNT:
		break;
	}
	return end(MG_LOGIN_UNAVAILABLE, POP3_BACKEND_LOG_UNEXPECTED);
}

struct pop3_backend_step pop3_backend_next(enum pop3_backend_state state,
					   enum pop3_backend_reply reply,
					   const struct pop3_backend_options *options)
{
	switch (state) {
	case POP3_BACKEND_GREETING:
	case POP3_BACKEND_STLS:
		/* Before the credentials, a -ERR says the backend cannot serve, not who is wrong. */
		return next_answer(state, reply, options, MG_LOGIN_UNAVAILABLE);
	case POP3_BACKEND_PASS:
		if (options->continuation)
			return next_continuation(reply);
		/* fall through */
	case POP3_BACKEND_USER:
		return next_answer(state, reply, options, MG_LOGIN_FAILED);
	case POP3_BACKEND_DONE:
	case POP3_BACKEND_STATE_COUNT:
		break;
	}
	/* Nothing is read once logged in, nor in a state that does not exist. */
	return end(MG_LOGIN_UNAVAILABLE, POP3_BACKEND_LOG_UNEXPECTED);
}
