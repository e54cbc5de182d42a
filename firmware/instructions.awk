# Instructions per element of the firmware's measured library calls, from its QEMU output
# (`instructions PATH METHOD COUNT ELEMENTS` lines, run under -icount shift=0): one line for
# both paths. Used by check.sh and size.sh; `label` names the build.
$1 == "instructions" { n[$2 " " $3] += $4; e[$2 " " $3] += $5 }
END {
    line = "instructions/element" (label ? " (" label ")" : "") ":"
    split("focal ghm_c ohem", m, " ")
    for (p = 0; p < 2; p++) {
        path = p ? "f32" : "q16"
        line = line (p ? ";" : "") " " path
        for (k = 1; k <= 3; k++) {
            key = path " " m[k]
            if (!(key in n) || e[key] == 0) { print "missing instruction count: " key; exit 1 }
            line = line (k > 1 ? "," : "") sprintf(" %s %.1f", m[k], n[key] / e[key])
        }
    }
    print line
}
