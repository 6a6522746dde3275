/*
 * imap_backend_step.c - the IMAP backend login's states and step rules (see
 * imap_backend_step.h). Pure functions only.
 */
#include <string.h>

#include "imap_backend_step.h"
#include "line_word.h"
#include "imap_token.h"

/* A state or reply class left out of a switch is a warning (an error with -Werror). */
#pragma GCC diagnostic warning "-Wswitch-enum"

static const char *const state_names[] = {
	[IMAP_BACKEND_GREETING] = "greeting",
	[IMAP_BACKEND_STARTTLS] = "starttls",
	[IMAP_BACKEND_ID] = "id",
	[IMAP_BACKEND_LOGIN] = "login",
	[IMAP_BACKEND_DONE] = "done",
};
_Static_assert(sizeof(state_names) / sizeof(state_names[0]) == IMAP_BACKEND_STATE_COUNT,
	       "every backend IMAP state has a name");

static const char *const reply_names[] = {
	[IMAP_BACKEND_REPLY_OK] = "ok",
	[IMAP_BACKEND_REPLY_NO] = "no",
	[IMAP_BACKEND_REPLY_UNAVAILABLE] = "unavailable",
	[IMAP_BACKEND_REPLY_TAGGED] = "tagged",
	[IMAP_BACKEND_REPLY_UNTAGGED] = "untagged",
	[IMAP_BACKEND_REPLY_CONTINUATION] = "continuation",
	[IMAP_BACKEND_REPLY_INVALID] = "invalid",
};
_Static_assert(sizeof(reply_names) / sizeof(reply_names[0]) == IMAP_BACKEND_REPLY_COUNT,
	       "every backend IMAP reply class has a name");

static const char *const move_names[] = {
	[IMAP_BACKEND_READ_ON] = "read-on",
	[IMAP_BACKEND_SEND_MORE] = "send-more",
	[IMAP_BACKEND_GO] = "go",
	[IMAP_BACKEND_END] = "end",
};
_Static_assert(sizeof(move_names) / sizeof(move_names[0]) == IMAP_BACKEND_MOVE_COUNT,
	       "every backend IMAP move has a name");

const char *imap_backend_state_name(enum imap_backend_state state)
{
	return (unsigned)state < IMAP_BACKEND_STATE_COUNT ? state_names[state] : "invalid";
}

const char *imap_backend_reply_name(enum imap_backend_reply reply)
{
	return (unsigned)reply < IMAP_BACKEND_REPLY_COUNT ? reply_names[reply] : "invalid";
}

const char *imap_backend_move_name(enum imap_backend_move move)
{
	return (unsigned)move < IMAP_BACKEND_MOVE_COUNT ? move_names[move] : "invalid";
}

const char *imap_backend_tag(enum imap_backend_state state)
{
	switch (state) {
	case IMAP_BACKEND_STARTTLS:
		return "M1";
	case IMAP_BACKEND_ID:
		return "M0";
	case IMAP_BACKEND_LOGIN:
		return "M2";
	case IMAP_BACKEND_GREETING:
	case IMAP_BACKEND_DONE:
	case IMAP_BACKEND_STATE_COUNT:
		break;
	}
	return NULL;
}

/* The text of a tagged answer, after "tag ". */
static enum imap_backend_reply classify_answer(const char *text, size_t len)
{
	if (starts_with_word(text, len, "OK", WORD_ANY_CASE))
		return IMAP_BACKEND_REPLY_OK;
	/* Dovecot's "NO [UNAVAILABLE]": the credentials could not be checked. */
	if (len >= 16 && memmem(text, len, "[UNAVAILABLE]", 13) != NULL)
		return IMAP_BACKEND_REPLY_UNAVAILABLE;
	if (starts_with_word(text, len, "NO", WORD_ANY_CASE))
		return IMAP_BACKEND_REPLY_NO;
	return IMAP_BACKEND_REPLY_TAGGED;
}

enum imap_backend_reply imap_backend_classify(enum imap_backend_state state, const char *line,
					      size_t len, size_t *text)
{
	const char *tag = imap_backend_tag(state);
	size_t taglen = tag != NULL ? strlen(tag) : 0;

	*text = 0;
	if (state == IMAP_BACKEND_GREETING && starts_with_word(line, len, "* OK", WORD_ANY_CASE))
		return IMAP_BACKEND_REPLY_OK;
	if (len >= 1 && line[0] == '+')
		return IMAP_BACKEND_REPLY_CONTINUATION;
	if (tag != NULL && len > taglen && memcmp(line, tag, taglen) == 0 && line[taglen] == ' ') {
		*text = taglen + 1;
		return classify_answer(line + *text, len - *text);
	}
	if (len >= 2 && line[0] == '*' && line[1] == ' ')
		return IMAP_BACKEND_REPLY_UNTAGGED;
	return IMAP_BACKEND_REPLY_INVALID;
}

static struct imap_backend_step go(enum imap_backend_state next)
{
	return (struct imap_backend_step){ .move = IMAP_BACKEND_GO, .next = next };
}

static struct imap_backend_step end(enum mg_login_result result, bool unexpected)
{
	return (struct imap_backend_step){ .move = IMAP_BACKEND_END, .result = result,
					   .unexpected = unexpected };
}

static struct imap_backend_step move(enum imap_backend_move how)
{
	return (struct imap_backend_step){ .move = how };
}

/* Untagged data before the answer: the login's goes to the client, the rest is skipped. */
static struct imap_backend_step untagged(enum imap_backend_state state)
{
	return (struct imap_backend_step){ .move = IMAP_BACKEND_READ_ON,
					   .relay = state == IMAP_BACKEND_LOGIN };
}

/* The exchange after the one in state, when it succeeds. */
static enum imap_backend_state after(enum imap_backend_state state,
				     const struct imap_backend_options *options)
{
	switch (state) {
	case IMAP_BACKEND_GREETING:
		if (options->starttls)
			return IMAP_BACKEND_STARTTLS;
		/* fall through */
	case IMAP_BACKEND_STARTTLS:
		return options->client_id ? IMAP_BACKEND_ID : IMAP_BACKEND_LOGIN;
	case IMAP_BACKEND_ID:
		return IMAP_BACKEND_LOGIN;
	case IMAP_BACKEND_LOGIN:
	case IMAP_BACKEND_DONE:
	case IMAP_BACKEND_STATE_COUNT:
		break;
	}
	return IMAP_BACKEND_DONE;
}

/* Waiting for "+" in the middle of a LOGIN or AUTHENTICATE command. */
static struct imap_backend_step next_continuation(enum imap_backend_reply reply)
{
	switch (reply) {
	case IMAP_BACKEND_REPLY_CONTINUATION:
		return move(IMAP_BACKEND_SEND_MORE);
	case IMAP_BACKEND_REPLY_UNTAGGED:
		return untagged(IMAP_BACKEND_LOGIN);
	case IMAP_BACKEND_REPLY_OK:
	case IMAP_BACKEND_REPLY_NO:
	case IMAP_BACKEND_REPLY_UNAVAILABLE:
	case IMAP_BACKEND_REPLY_TAGGED:
		/* The command was cut short (literal or mechanism refused): no login. */
		return end(MG_LOGIN_UNAVAILABLE, false);
	case IMAP_BACKEND_REPLY_INVALID:
	case IMAP_BACKEND_REPLY_COUNT:
		break;
	}
	return end(MG_LOGIN_UNAVAILABLE, true);
}

/* A tagged answer other than OK. */
static struct imap_backend_step not_ok(enum imap_backend_state state, enum imap_backend_reply reply,
				      const struct imap_backend_options *options)
{
	switch (state) {
	case IMAP_BACKEND_ID:
		/* ID only tells the backend who the client is: log in all the same. */
		return go(after(state, options));
	case IMAP_BACKEND_LOGIN:
		if (reply == IMAP_BACKEND_REPLY_UNAVAILABLE)
			return end(MG_LOGIN_UNAVAILABLE, true);
		/* Wrong credentials; an answer other than NO is worth a log line. */
		return end(MG_LOGIN_FAILED, reply != IMAP_BACKEND_REPLY_NO);
	case IMAP_BACKEND_GREETING:
	case IMAP_BACKEND_STARTTLS:
	case IMAP_BACKEND_DONE:
	case IMAP_BACKEND_STATE_COUNT:
		break;
	}
	return end(MG_LOGIN_UNAVAILABLE, true);
}

/* The answer to STARTTLS, ID or LOGIN. */
static struct imap_backend_step next_answer(enum imap_backend_state state,
					    enum imap_backend_reply reply,
					    const struct imap_backend_options *options)
{
	switch (reply) {
	case IMAP_BACKEND_REPLY_OK:
		return go(after(state, options));
	case IMAP_BACKEND_REPLY_NO:
	case IMAP_BACKEND_REPLY_UNAVAILABLE:
	case IMAP_BACKEND_REPLY_TAGGED:
		return not_ok(state, reply, options);
	case IMAP_BACKEND_REPLY_UNTAGGED:
		return untagged(state);
	case IMAP_BACKEND_REPLY_CONTINUATION:
	case IMAP_BACKEND_REPLY_INVALID:
	case IMAP_BACKEND_REPLY_COUNT:
		break;
	}
	return end(MG_LOGIN_UNAVAILABLE, true);
}

struct imap_backend_step imap_backend_next(enum imap_backend_state state,
					   enum imap_backend_reply reply,
					   const struct imap_backend_options *options)
{
	switch (state) {
	case IMAP_BACKEND_GREETING:
		/* One line, and it must be "* OK": not BYE, not PREAUTH. */
		return reply == IMAP_BACKEND_REPLY_OK ? go(after(state, options))
						      : end(MG_LOGIN_UNAVAILABLE, true);
	case IMAP_BACKEND_LOGIN:
		if (options->continuation)
			return next_continuation(reply);
		/* fall through */
	case IMAP_BACKEND_STARTTLS:
	case IMAP_BACKEND_ID:
		return next_answer(state, reply, options);
	case IMAP_BACKEND_DONE:
	case IMAP_BACKEND_STATE_COUNT:
		break;
	}
	/* Nothing is read once logged in, nor in a state that does not exist. */
	return end(MG_LOGIN_UNAVAILABLE, true);
}

bool imap_backend_has_capability(const char *line, size_t len, const char *cap)
{
	size_t caplen = strlen(cap);
	const char *code = memmem(line, len, "[CAPABILITY ", 12);
	const char *end_code;

	if (code == NULL)
		return false;
	/* Pointer arithmetic inside line[0..len): code and end_code point into it. */
	end_code = memchr(code, ']', len - (size_t)(code - line));
	if (end_code == NULL)
		return false;
	for (const char *p = code + 12; p < end_code;) {
		const char *sp = memchr(p, ' ', (size_t)(end_code - p));
		size_t wlen = (size_t)((sp != NULL ? sp : end_code) - p);

		if (wlen == caplen && imap_word_equals(p, wlen, cap))
			return true;
		p += wlen + 1;
	}
	return false;
}
