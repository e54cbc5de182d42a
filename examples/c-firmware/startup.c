/* Startup for the Cortex-M4(F): vector table, .data/.bss set-up, the FPU enabled through CPACR
 * for the hard-float build, then main(); semihosting SYS_EXIT with main's result. */
#include <stdint.h>
#include <string.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);
void semihosting_exit(int code);

void reset_handler(void);
static void fault_handler(void) { semihosting_exit(2); }

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(&_estack), reset_handler, fault_handler, fault_handler, fault_handler,
    fault_handler, fault_handler, 0, 0, 0, 0, fault_handler, fault_handler, 0, fault_handler,
    fault_handler,
};

void reset_handler(void) {
#if defined(__ARM_FP) && !defined(__SOFTFP__)
    /* CPACR: full access to CP10 and CP11 (the FPU) before any floating-point instruction. */
    volatile uint32_t *cpacr = (volatile uint32_t *)0xE000ED88u;
    *cpacr |= 0xFu << 20;
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
    memcpy(&_sdata, &_sidata, (size_t)((char *)&_edata - (char *)&_sdata));
    memset(&_sbss, 0, (size_t)((char *)&_ebss - (char *)&_sbss));
    semihosting_exit(main());
}

/* ARM semihosting: r0 = operation, r1 = argument, BKPT 0xAB. */
static int semihost(int op, const void *arg) {
    register int r0 __asm("r0") = op;
    register const void *r1 __asm("r1") = arg;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void semihosting_write0(const char *s) { semihost(0x04, s); }

void semihosting_exit(int code) {
    /* SYS_EXIT: ADP_Stopped_ApplicationExit (QEMU exits 0), else RunTimeErrorUnknown (1). */
    semihost(0x18, (const void *)(uintptr_t)(code == 0 ? 0x20026 : 0x20023));
    for (;;) {
    }
}
