/* The C firmware: runs the C ABI suite (suite.c: every function of hardmine.h, on both paths,
 * against golden values) and prints, over semihosting, each function's worst-case stack,
 * measured as the Rust firmware does it: the free stack below the caller is painted before the
 * call, and the lowest word changed afterwards is its high-water mark. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "suite.h"

void semihosting_write0(const char *s);
extern uint32_t _sstack;

#define PAINT 0xDEADBEEFu
#define MAX_FUNCS 64

static struct {
    const char *name;
    uint32_t bytes;
} worst[MAX_FUNCS];
static uintptr_t sp_at_paint;

static inline uintptr_t read_sp(void) {
    uintptr_t sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

/* Paints [stack bottom, SP - 64) (the margin covers probe_paint's own frame) and keeps the
 * caller's stack pointer, which suite_probe_begin hands over exactly (no push before it). */
void probe_paint(uintptr_t caller_sp);
void probe_paint(uintptr_t caller_sp) {
    sp_at_paint = caller_sp;
    uintptr_t top = read_sp() - 64;
    for (volatile uint32_t *p = &_sstack; (uintptr_t)p < top; p++) *p = PAINT;
}

__attribute__((naked, noinline)) void suite_probe_begin(void) {
    __asm volatile("mov r0, sp\n\tb probe_paint");
}

__attribute__((noinline)) void suite_probe_end(const char *name) {
    const volatile uint32_t *p = &_sstack;
    while ((uintptr_t)p < sp_at_paint && *p == PAINT) p++;
    uint32_t used = (uint32_t)(sp_at_paint - (uintptr_t)p);
    for (int i = 0; i < MAX_FUNCS; i++) {
        if (worst[i].name == NULL || strcmp(worst[i].name, name) == 0) {
            worst[i].name = name;
            if (used > worst[i].bytes) worst[i].bytes = used;
            return;
        }
    }
}

void suite_print(const char *line) {
    semihosting_write0(line);
    semihosting_write0("\n");
}

int main(void) {
    char line[96];
    int failed = suite_run();
    for (int i = 0; i < MAX_FUNCS && worst[i].name != NULL; i++) {
        snprintf(line, sizeof line, "stack %s %lu", worst[i].name, (unsigned long)worst[i].bytes);
        suite_print(line);
    }
    suite_print(failed == 0 ? "done true" : "done false");
    return failed != 0;
}
