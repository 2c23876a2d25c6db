# The verifier table of scripts/vmtest.sh: program x kernel, from the
# suite's markers (test/vmtest/suite/verifier.go):
#
#   VMTEST-INFO kernel <release>
#   VMTEST-VERIFIER-BUDGET <per program> <per object>
#   VMTEST-VERIFIER <object> <program> <count|refused|rejected> [reason]
#
# Input: each column's marker lines prefixed with the column's name;
# -v cols="host 6.1-bpf ..." orders the columns. Prints a markdown table
# (rows: object/program, then each object's total), the programs that did
# not load and why, and exits 1 when a program is over the per-program
# budget, an object over the per-object one, the verifier rejected a
# program, or nothing was measured at all.

BEGIN { nc = split(cols, col, " ") }

$2 == "VMTEST-INFO" && $3 == "kernel" { kern[$1] = $4 }

$2 == "VMTEST-VERIFIER-BUDGET" { pb = $3 + 0; ob = $4 + 0 }

$2 == "VMTEST-VERIFIER" {
	c = $1; o = $3; k = o "/" $4
	if (!(o in nprog)) objs[++no] = o
	if (!(k in seen)) { seen[k] = 1; prog[o, ++nprog[o]] = k }
	val[c, k] = $5
	measured[c] = 1
	if ($5 ~ /^[0-9]+$/) { sum[c, o] += $5; next }
	notloaded[c, o]++
	why = $6
	for (i = 7; i <= NF; i++) why = why " " $i
	r = c ": " $5 " (" why "):"
	if (!(r in reason)) order[++nr] = r
	reason[r] = reason[r] " " k
}

function cell(c, k,    v) {
	if (!measured[c]) return "-"
	if (!((c, k) in val)) return "absent"
	v = val[c, k]
	if (v == "rejected") { rejected++; return "**rejected**" }
	if (v !~ /^[0-9]+$/) return v
	if (v + 0 > pb) { overprog++; return "**" v "** over" }
	return v
}

function total(c, o,    s, t) {
	if (!measured[c]) return "-"
	s = sum[c, o] + 0
	t = s
	if (s > ob) { overobj++; t = "**" s "** over" }
	if (notloaded[c, o]) t = t " (" notloaded[c, o] " not loaded)"
	return t
}

END {
	if (!no) {
		print "No verifier measurements: neither the host nor any boot printed VMTEST-VERIFIER lines."
		exit 1
	}
	row = "| program |"; sep = "|---|"; kr = "| kernel |"
	for (i = 1; i <= nc; i++) { row = row " " col[i] " |"; sep = sep "---:|"; kr = kr " " (col[i] in kern ? kern[col[i]] : "?") " |" }
	print row; print sep; print kr
	for (j = 1; j <= no; j++) {
		o = objs[j]
		for (n = 1; n <= nprog[o]; n++) {
			row = "| " prog[o, n] " |"
			for (i = 1; i <= nc; i++) row = row " " cell(col[i], prog[o, n]) " |"
			print row
		}
		row = "| **" o " total** |"
		for (i = 1; i <= nc; i++) row = row " " total(col[i], o) " |"
		print row
	}
	print ""
	printf "Budget: %d verified instructions per program, %d per object (enforcer.VerifierBudgetProgram, enforcer.VerifierBudgetObject); \"-\": not measured.\n", pb, ob
	for (i = 1; i <= nr; i++) print "- " order[i] reason[order[i]]
	if (overprog + overobj + rejected == 0) { print ""; print "Verifier budget: **within** on every measured kernel."; exit 0 }
	print ""
	printf "Verifier budget: **exceeded**: %d program cells over %d, %d object totals over %d, %d rejected by the verifier.\n", overprog, pb, overobj, ob, rejected
	exit 1
}
