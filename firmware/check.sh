#!/usr/bin/env bash
# Firmware integration check: builds the Cortex-M4F program, runs it under QEMU, compares its
# results with the host build (Q15.16 bit for bit), proves the release build panic-free at link
# time, builds the C ABI (cbindgen header, staticlib) and runs a C test against golden values,
# and reports flash, static RAM and the stack high-water mark. Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

say() { printf '%s\n' "$*"; }

say "-- tools"
rustup target add thumbv7em-none-eabihf >/dev/null
rustup component add llvm-tools >/dev/null
if ! command -v qemu-system-arm >/dev/null; then
    (apt-get install -y -q qemu-system-arm >/dev/null 2>&1) || { apt-get update -q >/dev/null && apt-get install -y -q qemu-system-arm >/dev/null; }
fi
command -v cbindgen >/dev/null || cargo install cbindgen --locked
command -v gcc >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q gcc >/dev/null; }
llvm_size="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/llvm-size"

say "-- build (thumbv7em-none-eabihf, release)"
(cd firmware && cargo build --release --locked --bin firmware)
say "-- panic-freedom: panic_check links only if no panic path is reachable"
if (cd firmware && cargo build --release --locked --bin panic_check 2>"$work/link.log"); then
    panic="panic-free ok"
else
    grep -E "undefined symbol|error" "$work/link.log" | head -5
    say "panic-freedom FAILED: a panic path is reachable from the entry points"
    exit 1
fi

say "-- QEMU (mps2-an386, Cortex-M4)"
elf=firmware/target/thumbv7em-none-eabihf/release/firmware
# -icount shift=0: one instruction is one virtual nanosecond, so SysTick counts instructions.
timeout 120 qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic -icount shift=0 \
    -semihosting-config enable=on,target=native -kernel "$elf" >"$work/qemu.out"
grep -q '^done true$' "$work/qemu.out"
grep -E '^(stack|state|icount)' "$work/qemu.out"
awk -v label="qemu -icount shift=0" -f firmware/instructions.awk "$work/qemu.out"
say "  (focal: loss and gradient; ghm_c: a 64-element batch streamed in chunks of 16, histogram, weights, loss and gradient; ohem: top 8 of 64 losses, the selection alone)"
FIRMWARE_OUTPUT="$work/qemu.out" cargo test --release --locked -q -p hardmine-host-tests --test firmware -- --ignored --nocapture \
    | grep -E 'firmware vs host|test result'

say "-- C ABI (header drift, host C test, no_std staticlib, C firmware under QEMU): examples/c-firmware/check.sh"
bash examples/c-firmware/check.sh

say "-- sizes"
size_of() { # flash = everything loaded from flash; ram = .data + .bss + .uninit
    "$llvm_size" -A "$1" | awk '
        $1 ~ /^\.(vector_table|text|rodata|data)$/ { flash += $2 }
        $1 ~ /^\.(data|bss|uninit)$/ { ram += $2 }
        END { print flash, ram }'
}
bash firmware/size.sh
read -r flash ram < <(size_of "$elf")
read -r lib_flash lib_ram < <(size_of firmware/target/thumbv7em-none-eabihf/release/panic_check)
stack=$(sed -n 's/^stack //p' "$work/qemu.out")
say "library workload alone (panic_check: focal, GHM-C, OHEM, BCE, SGD step on Q15.16 and f32): flash $lib_flash B, ram $lib_ram B"
say "firmware: flash $flash B, ram $ram B, stack $stack B, qemu ok, c-abi ok, $panic"
bash firmware-finetune/check.sh
