/*
 * check_config_table.h - all typed options of all sections (config_options.c)
 * as one list, so a check loop test runs once per option.
 */
#ifndef MG_CHECK_CONFIG_TABLE_H
#define MG_CHECK_CONFIG_TABLE_H

#include <stddef.h>

#include "config_internal.h"

/* The i-th option over all tables, in order, and its table; NULL past the last. */
static inline const struct config_option *typed_option(size_t i, const struct config_table **table)
{
	for (size_t t = 0; t < config_n_tables; t++) {
		if (i < config_tables[t].n_options) {
			*table = &config_tables[t];
			return &config_tables[t].options[i];
		}
		i -= config_tables[t].n_options;
	}
	return NULL;
}

static inline int n_typed_options(void)
{
	size_t n = 0;

	for (size_t t = 0; t < config_n_tables; t++)
		n += config_tables[t].n_options;
	return (int)n;
}

#endif
