/*
 * check_auth_pam.c - the PAM conversation function (auth_pam.c) on its own:
 * every message style answered from the login's user and password, the
 * message-count bounds, and unknown or missing messages refusing the whole
 * conversation with nothing left allocated. No PAM stack runs: the
 * conversation is called as a module would call it. PAM logins through the
 * auth process are check_auth_process.c.
 */
#include <security/pam_appl.h>

#include <check.h>
#include <stdlib.h>

#include "auth_pam.h"
#include "check_run.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const struct auth_pam_conv_data conv_data = {
	.user = "alice", .user_len = 5, .password = "s3cret", .password_len = 6,
};

/* Not NULL: the conversation must reset *resp itself when it fails. */
static struct pam_response sentinel;

static void free_responses(struct pam_response *resp, int n)
{
	for (int i = 0; i < n; i++)
		free(resp[i].resp);
	free(resp);
}

START_TEST(conversation_every_style)
{
	const struct pam_message m[] = {
		{ PAM_TEXT_INFO, "Welcome" },
		{ PAM_PROMPT_ECHO_OFF, "Password: " },
		{ PAM_ERROR_MSG, "bad \x1b[31mthing\n" },
		{ PAM_PROMPT_ECHO_ON, "Login: " },
		{ PAM_TEXT_INFO, NULL },
		{ PAM_PROMPT_ECHO_OFF, "Password again: " },
	};
	const struct pam_message *pm[6];
	struct pam_response *resp = NULL;

	for (int i = 0; i < 6; i++)
		pm[i] = &m[i];
	ck_assert_int_eq(auth_pam_conversation(6, pm, &resp, (void *)&conv_data), PAM_SUCCESS);
	ck_assert_ptr_nonnull(resp);
	ck_assert_ptr_null(resp[0].resp);
	ck_assert_str_eq(resp[1].resp, "s3cret");
	ck_assert_ptr_null(resp[2].resp);
	ck_assert_str_eq(resp[3].resp, "alice");
	ck_assert_ptr_null(resp[4].resp);
	ck_assert_str_eq(resp[5].resp, "s3cret");
	for (int i = 0; i < 6; i++)
		ck_assert_int_eq(resp[i].resp_retcode, 0);
	free_responses(resp, 6);
}
END_TEST

START_TEST(conversation_max_messages)
{
	struct pam_message m[PAM_MAX_NUM_MSG];
	const struct pam_message *pm[PAM_MAX_NUM_MSG + 1];
	struct pam_response *resp = NULL;

	for (int i = 0; i < PAM_MAX_NUM_MSG; i++) {
		m[i].msg_style = PAM_PROMPT_ECHO_OFF;
		m[i].msg = "Password: ";
		pm[i] = &m[i];
	}
	pm[PAM_MAX_NUM_MSG] = &m[0];
	ck_assert_int_eq(auth_pam_conversation(PAM_MAX_NUM_MSG, pm, &resp, (void *)&conv_data),
			 PAM_SUCCESS);
	for (int i = 0; i < PAM_MAX_NUM_MSG; i++)
		ck_assert_str_eq(resp[i].resp, "s3cret");
	free_responses(resp, PAM_MAX_NUM_MSG);

	resp = &sentinel;	/* must be reset to NULL on failure */
	ck_assert_int_eq(auth_pam_conversation(PAM_MAX_NUM_MSG + 1, pm, &resp,
					       (void *)&conv_data), PAM_CONV_ERR);
	ck_assert_ptr_null(resp);
	resp = &sentinel;
	ck_assert_int_eq(auth_pam_conversation(0, pm, &resp, (void *)&conv_data), PAM_CONV_ERR);
	ck_assert_ptr_null(resp);
	ck_assert_int_eq(auth_pam_conversation(-1, pm, &resp, (void *)&conv_data), PAM_CONV_ERR);
	ck_assert_ptr_null(resp);
	ck_assert_int_eq(auth_pam_conversation(1, pm, NULL, (void *)&conv_data), PAM_CONV_ERR);
	ck_assert_int_eq(auth_pam_conversation(1, pm, &resp, NULL), PAM_CONV_ERR);
	ck_assert_ptr_null(resp);
}
END_TEST

/* Unknown styles fail the whole conversation; answers already made are freed (ASan checks). */
static const int unknown_styles[] = { 0, 5 /* PAM_RADIO_TYPE */, 7 /* PAM_BINARY_PROMPT */,
				      99, -1 };

START_TEST(conversation_unknown_style)
{
	struct pam_message m[3] = {
		{ PAM_PROMPT_ECHO_OFF, "Password: " },
		{ PAM_PROMPT_ECHO_ON, "Login: " },
		{ unknown_styles[_i], "?" },
	};
	const struct pam_message *pm[3] = { &m[0], &m[1], &m[2] };
	struct pam_response *resp = &sentinel;

	ck_assert_int_eq(auth_pam_conversation(3, pm, &resp, (void *)&conv_data), PAM_CONV_ERR);
	ck_assert_ptr_null(resp);

	pm[1] = NULL;	/* a missing message is refused too */
	resp = &sentinel;
	ck_assert_int_eq(auth_pam_conversation(3, pm, &resp, (void *)&conv_data), PAM_CONV_ERR);
	ck_assert_ptr_null(resp);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("auth_pam");
	TCase *conv = tcase_create("conversation");

	tcase_add_test(conv, conversation_every_style);
	tcase_add_test(conv, conversation_max_messages);
	tcase_add_loop_test(conv, conversation_unknown_style, 0, N(unknown_styles));
	suite_add_tcase(suite, conv);
	return check_run(suite);
}
