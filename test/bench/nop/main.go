// Command nop does nothing: the benchmarks exec it, static, next to
// /bin/true, as the start and exit of the Go runtime alone, which any
// hook written in Go pays before its first line runs.
package main

func main() {}
