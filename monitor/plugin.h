/*
 * plugin.h - run the whole check for the options given: the steps of
 * check_cleartext_login in order, over up to three connections, within the
 * -t budget. Everything is collected in the report; the result is its state.
 */
#ifndef MON_PLUGIN_H
#define MON_PLUGIN_H

#include "options.h"
#include "report.h"
#include "state.h"
#include "transcript.h"

enum mon_state plugin_run(const struct mon_options *opt, struct mon_report *report,
			 struct mon_transcript *transcript);

#endif
