/*
 * check_run.h - the one way every unit test program runs its suite: check's
 * normal output, and an exit status make check understands.
 */
#ifndef MG_CHECK_RUN_H
#define MG_CHECK_RUN_H

#include <check.h>
#include <stdlib.h>

static inline int check_run(Suite *suite)
{
	SRunner *runner = srunner_create(suite);
	int failed;

	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
