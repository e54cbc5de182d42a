#!/usr/bin/env python3
"""Checks the defmt log of the cortex-m-defmt example without defmt-print.

A light decoder for what this program logs: the frames (rzcobs-encoded, 0-terminated) are
decoded as defmt-decoder's `rzcobs_decode` does, each frame's first two bytes index the
interned format strings (the `.defmt` symbols of the ELF, listed by llvm-nm), and the
arguments this program uses are read: `{=str}` (a 4-byte length, bytes), `{}` of an f32 (the
index of `{=f32}`, 4 bytes) and of a `hardmine::Q16` (a sequence of `{=i32}/65536`, 4 bytes).
Decoding stops there: the rest of a frame is not read (rzcobs pads it with zeros).

It checks the order of the messages, both paths' names, the verdict `ok`, and the focal
losses against the loss recomputed here from torchvision's formula (f32 to 1e-5 relative,
Q15.16 to 2e-4 absolute).

usage: check_log.py LLVM_NM ELF LOG
"""
import json
import math
import struct
import subprocess
import sys


def rzcobs_decode(data):
    res = []
    it = reversed(data)
    for x in it:
        if x == 0:
            raise ValueError("malformed frame")
        if x <= 0x7F:
            for i in range(7):
                res.append(next(it) if x & (1 << (6 - i)) == 0 else 0)
        elif x <= 0xFE:
            res.append(0)
            res.extend(next(it) for _ in range((x & 0x7F) + 7))
        else:
            res.extend(next(it) for _ in range(134))
    return bytes(reversed(res))


def table(nm, elf):
    out = subprocess.run([nm, elf], check=True, capture_output=True, text=True).stdout
    strings = {}
    for line in out.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[2].startswith("{"):
            sym = json.loads(parts[2])
            strings[int(parts[0], 16)] = sym["data"]
    return strings


class Frame:
    def __init__(self, strings, raw):
        self.strings, self.raw, self.at = strings, raw, 0
        self.format = self.istr()

    def take(self, n):
        chunk = self.raw[self.at : self.at + n]
        if len(chunk) != n:
            raise ValueError("frame too short")
        self.at += n
        return chunk

    def istr(self):
        return self.strings[struct.unpack("<H", self.take(2))[0]]

    def str_arg(self):
        # A usize length (4 bytes on this 32-bit target), then the bytes.
        return self.take(struct.unpack("<I", self.take(4))[0]).decode()

    def number(self):
        """A `{}` argument that is an f32 or a Q16 (whose `Format` writes `{=i32}/65536`,
        sent as a sequence: its index and data, then a 0 index)."""
        inner = self.istr()
        if inner == "{=f32}":
            return struct.unpack("<f", self.take(4))[0]
        if inner == "{=__internal_FormatSequence}" and self.istr() == "{=i32}/65536":
            value = struct.unpack("<i", self.take(4))[0] / 65536
            assert self.take(2) == b"\0\0", "sequence not closed"
            return value
        raise ValueError(f"unexpected argument {inner!r}")


def focal_mean(xs, ts, alpha=0.25, gamma=2.0):
    total = 0.0
    for x, t in zip(xs, ts):
        p = 1 / (1 + math.exp(-x))
        ce = max(x, 0) - x * t + math.log1p(math.exp(-abs(x)))
        p_t = p * t + (1 - p) * (1 - t)
        total += (alpha * t + (1 - alpha) * (1 - t)) * ce * (1 - p_t) ** gamma
    return total / len(xs)


def main():
    nm, elf, log = sys.argv[1:4]
    strings = table(nm, elf)
    data = open(log, "rb").read()
    # Frames end in a 0 byte (and the stream may open with one).
    frames = [Frame(strings, rzcobs_decode(f)) for f in data.split(b"\0")[:-1] if f]
    expected = [
        "{=str} focal loss {} grad[3] {}",
        "{=str} GHM-C loss {} grad[3] {}",
        "{=str} OHEM top 3 {=[?]}",
    ] * 2 + ["a target of 2 is refused: {}", "hardmine on cortex-m4: {=str}"]
    got = [f.format for f in frames]
    assert got == expected, f"messages: {got}"
    # Must match src/main.rs's batch.
    xs = [-4.0, -3.5, 2.0, -0.1, 1.2, -2.5, -6.0, 0.4]
    ts = [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    reference = focal_mean(xs, ts)
    for frame, path, tol in [(frames[0], "f32", 1e-5 * reference), (frames[3], "q16", 2e-4)]:
        assert frame.str_arg() == path
        loss = frame.number()
        assert abs(loss - reference) <= tol, f"{path} focal {loss} vs {reference}"
        print(f"{path} focal loss {loss:.8f} (recomputed here: {reference:.8f})")
    verdict = frames[-1].str_arg()
    assert verdict == "ok", f"verdict {verdict!r}"
    print(f"{len(frames)} defmt frames decoded: messages in order, verdict ok")


if __name__ == "__main__":
    main()
