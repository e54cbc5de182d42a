/* The C ABI suite: every function of hardmine.h on the f32 and the Q15.16 path against golden
 * values (tools/golden_to_c.py), run by the firmware (main.c, under QEMU) and by the host C test
 * (ffi/tests/c/test.c). */
#ifndef SUITE_H
#define SUITE_H

#include <stddef.h>

/* Supplied by the program: called around every library call (the firmware paints and measures
 * the stack there); `name` is the function's name as in hardmine.h. */
void suite_probe_begin(void);
void suite_probe_end(const char *name);
/* One line of output. */
void suite_print(const char *line);

/* Runs every check; returns the number of failures (0: all passed). */
int suite_run(void);

#endif
