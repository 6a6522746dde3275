/*
 * check_imap_command.c - the IMAP front end's command table and decision
 * rules: every command in every column of (TLS, credentials allowed), the
 * later states, and out-of-range values.
 */
#include <check.h>
#include <string.h>

#include "check_run.h"
#include "imap_command.h"

#define TABLE_LEN(t) ((int)(sizeof(t) / sizeof((t)[0])))

#define R IMAP_ACTION_RUN
#define C IMAP_ACTION_REFUSE_CLEARTEXT
#define N IMAP_ACTION_NOT_IN_STATE
#define T IMAP_ACTION_ALREADY_TLS
#define U IMAP_ACTION_UNKNOWN

/* Columns: cleartext and refused, cleartext but allowed, TLS, TLS but refused. */
static const struct {
	bool tls;
	bool allowed;
} columns[4] = { { false, false }, { false, true }, { true, true }, { true, false } };

struct decide_row {
	enum imap_command_id id;
	enum imap_action not_authenticated[4];
};

static const struct decide_row decide_rows[] = {
	{ IMAP_CMD_UNKNOWN, { U, U, U, U } },
	{ IMAP_CMD_CAPABILITY, { R, R, R, R } },
	{ IMAP_CMD_NOOP, { R, R, R, R } },
	{ IMAP_CMD_LOGOUT, { R, R, R, R } },
	{ IMAP_CMD_ID, { R, R, R, R } },
	{ IMAP_CMD_STARTTLS, { R, R, T, T } },
	{ IMAP_CMD_LOGIN, { C, R, R, C } },
	{ IMAP_CMD_AUTHENTICATE, { C, R, R, C } },
	{ IMAP_CMD_SELECT, { N, N, N, N } },
	{ IMAP_CMD_EXAMINE, { N, N, N, N } },
	{ IMAP_CMD_CREATE, { N, N, N, N } },
	{ IMAP_CMD_DELETE, { N, N, N, N } },
	{ IMAP_CMD_RENAME, { N, N, N, N } },
	{ IMAP_CMD_SUBSCRIBE, { N, N, N, N } },
	{ IMAP_CMD_UNSUBSCRIBE, { N, N, N, N } },
	{ IMAP_CMD_LIST, { N, N, N, N } },
	{ IMAP_CMD_LSUB, { N, N, N, N } },
	{ IMAP_CMD_NAMESPACE, { N, N, N, N } },
	{ IMAP_CMD_STATUS, { N, N, N, N } },
	{ IMAP_CMD_APPEND, { N, N, N, N } },
	{ IMAP_CMD_IDLE, { N, N, N, N } },
	{ IMAP_CMD_ENABLE, { N, N, N, N } },
	{ IMAP_CMD_CLOSE, { N, N, N, N } },
	{ IMAP_CMD_UNSELECT, { N, N, N, N } },
	{ IMAP_CMD_EXPUNGE, { N, N, N, N } },
	{ IMAP_CMD_SEARCH, { N, N, N, N } },
	{ IMAP_CMD_FETCH, { N, N, N, N } },
	{ IMAP_CMD_STORE, { N, N, N, N } },
	{ IMAP_CMD_COPY, { N, N, N, N } },
	{ IMAP_CMD_MOVE, { N, N, N, N } },
	{ IMAP_CMD_UID, { N, N, N, N } },
	{ IMAP_CMD_CHECK, { N, N, N, N } },
};
_Static_assert(sizeof(decide_rows) / sizeof(decide_rows[0]) == IMAP_CMD_COUNT,
	       "the decision test covers every command");

START_TEST(test_decide_row)
{
	const struct decide_row *row = &decide_rows[_i];

	ck_assert_int_eq(row->id, _i);
	for (int c = 0; c < 4; c++) {
		enum imap_action a = imap_decide(IMAP_STATE_NOT_AUTHENTICATED, columns[c].tls,
						 columns[c].allowed, row->id);

		ck_assert_msg(a == row->not_authenticated[c], "%s tls=%d allowed=%d: %s, want %s",
			      imap_command_name(row->id), columns[c].tls, columns[c].allowed,
			      imap_action_name(a), imap_action_name(row->not_authenticated[c]));
	}
}
END_TEST

/* After login or logout the front end reads nothing: nothing runs there. */
START_TEST(test_decide_later_states)
{
	static const enum imap_state later[] = { IMAP_STATE_AUTHENTICATED, IMAP_STATE_LOGOUT,
						 IMAP_STATE_COUNT, (enum imap_state)99 };

	for (int s = 0; s < TABLE_LEN(later); s++) {
		for (int id = 0; id < IMAP_CMD_COUNT; id++) {
			for (int c = 0; c < 4; c++) {
				enum imap_action a = imap_decide(later[s], columns[c].tls,
								 columns[c].allowed,
								 (enum imap_command_id)id);

				ck_assert_int_eq(a, id == IMAP_CMD_UNKNOWN ? U : N);
			}
		}
	}
}
END_TEST

START_TEST(test_decide_bad_id)
{
	ck_assert_int_eq(imap_decide(IMAP_STATE_NOT_AUTHENTICATED, false, true, IMAP_CMD_COUNT), U);
	ck_assert_int_eq(imap_decide(IMAP_STATE_NOT_AUTHENTICATED, true, true,
				     (enum imap_command_id)-1), U);
	ck_assert_int_eq(imap_takes_credentials(IMAP_CMD_COUNT), false);
	ck_assert_str_eq(imap_command_name(IMAP_CMD_COUNT), "");
	ck_assert_str_eq(imap_state_name(IMAP_STATE_COUNT), "invalid");
	ck_assert_str_eq(imap_action_name(IMAP_ACTION_COUNT), "invalid");
}
END_TEST

/* The one promise: without credentials allowed, no credential command ever runs. */
START_TEST(test_decide_invariant)
{
	for (int id = 0; id < IMAP_CMD_COUNT; id++) {
		if (!imap_takes_credentials((enum imap_command_id)id))
			continue;
		for (int tls = 0; tls < 2; tls++)
			ck_assert_int_eq(imap_decide(IMAP_STATE_NOT_AUTHENTICATED, tls, false,
						     (enum imap_command_id)id), C);
	}
	ck_assert(imap_takes_credentials(IMAP_CMD_LOGIN));
	ck_assert(imap_takes_credentials(IMAP_CMD_AUTHENTICATE));
	ck_assert(!imap_takes_credentials(IMAP_CMD_STARTTLS));
}
END_TEST

START_TEST(test_names_round_trip)
{
	enum imap_command_id id = (enum imap_command_id)(_i + 1);
	const char *name = imap_command_name(id);
	char lower[32];
	size_t len = strlen(name);

	ck_assert_uint_gt(len, 0);
	ck_assert_uint_lt(len, sizeof(lower));
	ck_assert_int_eq(imap_command_lookup(name, len), id);
	for (size_t i = 0; i < len; i++)
		lower[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
	ck_assert_int_eq(imap_command_lookup(lower, len), id);
}
END_TEST

START_TEST(test_lookup_unknown)
{
	ck_assert_int_eq(imap_command_lookup("", 0), IMAP_CMD_UNKNOWN);
	ck_assert_int_eq(imap_command_lookup(NULL, 0), IMAP_CMD_UNKNOWN);
	ck_assert_int_eq(imap_command_lookup("LOGINX", 6), IMAP_CMD_UNKNOWN);
	ck_assert_int_eq(imap_command_lookup("LOGI", 4), IMAP_CMD_UNKNOWN);
	/* the length counts, not a terminator: "LOGIN" inside a longer buffer */
	ck_assert_int_eq(imap_command_lookup("LOGIN foo", 5), IMAP_CMD_LOGIN);
	ck_assert_int_eq(imap_command_lookup("LOG\0IN", 6), IMAP_CMD_UNKNOWN);
	ck_assert_int_eq(imap_command_lookup("XYZZY", 5), IMAP_CMD_UNKNOWN);
	ck_assert_str_eq(imap_state_name(IMAP_STATE_NOT_AUTHENTICATED), "not-authenticated");
}
END_TEST

static Suite *imap_command_suite(void)
{
	Suite *s = suite_create("imap_command");
	TCase *tc = tcase_create("decide");

	tcase_add_loop_test(tc, test_decide_row, 0, TABLE_LEN(decide_rows));
	tcase_add_test(tc, test_decide_later_states);
	tcase_add_test(tc, test_decide_bad_id);
	tcase_add_test(tc, test_decide_invariant);
	suite_add_tcase(s, tc);

	tc = tcase_create("names");
	tcase_add_loop_test(tc, test_names_round_trip, 0, IMAP_CMD_COUNT - 1);
	tcase_add_test(tc, test_lookup_unknown);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(imap_command_suite());
}
