#!/usr/bin/env bash
# On-device fine-tuning check (issue 19), called at the end of firmware/check.sh: builds the
# fine-tuning program within its budgets (memory.x: 256 KiB flash, 64 KiB RAM; a bigger
# program fails to link), proves it panic-free at link time, runs it under QEMU (mps2-an386,
# -icount shift=0 so SysTick counts instructions; time bounded), compares every printed value
# with the host's run of the same job (Q15.16 and f32 bit for bit), runs the `diverge` build
# (its error line and failure exit), regenerates the committed device inputs bit for bit,
# regenerates the tuned learning-rate table (device/src/rates.rs) bit for bit, and prints the
# before/after AP, RAM (static + painted-stack high-water), flash and
# instructions per fine-tuning step, failing above 64 KiB of RAM or 256 KiB of flash.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

say() { printf '%s\n' "$*"; }
ram_budget=65536
flash_budget=262144
llvm_size="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/llvm-size"
qemu() { # qemu ELF OUT: the fine-tuning program under QEMU, at most 5 minutes
    timeout 300 qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic -icount shift=0 \
        -semihosting-config enable=on,target=native -kernel "$1" >"$2"
}

say "-- fine-tuning firmware: format and clippy"
(cd firmware-finetune && cargo fmt -- --check)
(cd firmware-finetune && cargo clippy --all-targets --locked -- -D warnings)

say "-- fine-tuning firmware: build within 256 KiB flash and 64 KiB RAM (release)"
if ! (cd firmware-finetune && cargo build --release --locked --bin finetune 2>"$work/build.log"); then
    grep -E "will not fit|overflowed|error" "$work/build.log" | head -5
    say "fine-tuning firmware FAILED to build or to fit its flash and RAM budgets"
    exit 1
fi
say "-- fine-tuning firmware: panic-freedom (panic_check links only if no panic path is reachable)"
if (cd firmware-finetune && cargo build --release --locked --bin panic_check 2>"$work/link.log"); then
    panic="panic-free ok"
else
    grep -E "undefined symbol|error" "$work/link.log" | head -5
    say "fine-tuning panic-freedom FAILED: a panic path is reachable"
    exit 1
fi

say "-- fine-tuning firmware: QEMU (mps2-an386, Cortex-M4, -icount shift=0)"
elf=firmware-finetune/target/thumbv7em-none-eabihf/release/finetune
start=$(date +%s)
status=0
qemu "$elf" "$work/qemu.out" || status=$?
seconds=$(($(date +%s) - start))
if [ "$status" -ne 0 ] || ! grep -q '^done true$' "$work/qemu.out"; then
    tail -5 "$work/qemu.out"
    say "fine-tuning firmware FAILED under QEMU (exit $status; 124: timed out; a stack past 64 KiB faults)"
    exit 1
fi
grep -E '^(q16|f32) ' "$work/qemu.out"
DEVICE_FINETUNE_OUTPUT="$work/qemu.out" cargo test --release --locked -q -p hardmine-device --test firmware \
    -- --ignored --nocapture | grep -E 'firmware vs host|test result'
cargo build --release --locked -q -p hardmine-cli
./target/release/hardmine finetune --config device >"$work/host.out"
grep -E '^(device|q16|f32) ' "$work/qemu.out" | diff - "$work/host.out"
say "hardmine finetune --config device prints the firmware's lines"

say "-- fine-tuning firmware: a diverging run (feature diverge: the rate times 10^6)"
(cd firmware-finetune && cargo build --release --locked -q --features diverge --bin finetune)
status=0
qemu "$elf" "$work/diverge.out" || status=$?
if [ "$status" -eq 0 ] || [ "$status" -eq 124 ] || ! grep -q '^error q16 bce step ' "$work/diverge.out"; then
    tail -3 "$work/diverge.out"
    say "the diverging build did not report its error and fail (exit $status)"
    exit 1
fi
diverged="$(grep '^error ' "$work/diverge.out" | head -1) (exit $status)"
# Leave the release binary the plain build again.
(cd firmware-finetune && cargo build --release --locked -q --bin finetune)

say "-- device inputs: regenerated bit for bit (hardmine pretrain --config device)"
./target/release/hardmine pretrain --config device --out "$work/device_pretrained.bin" | tail -1
for f in device_digits.bin device_pretrained.bin device_pretrained_q16.bin; do
    cmp "data/$f" "$work/$f"
done

say "-- device learning rates: regenerated bit for bit (hardmine tune --config device)"
./target/release/hardmine tune --config device --out "$work/rates.rs" | tail -1
cmp device/src/rates.rs "$work/rates.rs"
say "device/src/rates.rs is what the tuner produces"

say "-- fine-tuning firmware: budgets and speed"
read -r flash static < <("$llvm_size" -A "$elf" | awk '
    $1 ~ /^\.(vector_table|text|rodata|data)$/ { flash += $2 }
    $1 ~ /^\.(data|bss|uninit)$/ { ram += $2 }
    END { print flash, ram }')
stack=$(sed -n 's/^stack //p' "$work/qemu.out")
ram=$((static + stack))
grep '^instructions ' "$work/qemu.out"
per_step() { awk -v p="$1" -v m="$2" '$1 == "instructions" && $2 == p && $3 == m { print $NF }' "$work/qemu.out"; }
aps=$(awk '$1 == "q16" && $2 == "pretrained" { before = $4 }
    $1 == "q16" && $2 != "pretrained" { printf "%s%s AP50 %s -> %s", sep, $2, before, $9; sep = ", " }' "$work/qemu.out")
say "diverging build: $diverged"
say "on-device fine-tuning (q16): $aps; ram $ram B (static $static + stack $stack), flash $flash B, $(per_step q16 focal) instructions/step (q16 focal; f32 focal $(per_step f32 focal)), qemu ${seconds} s, $panic"
if [ "$ram" -gt "$ram_budget" ] || [ "$flash" -gt "$flash_budget" ]; then
    say "fine-tuning firmware OVER BUDGET: ram $ram B (at most $ram_budget), flash $flash B (at most $flash_budget)"
    exit 1
fi
