package main

import (
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The hook parses its command line itself, with the flag package's
// syntax and messages: -name or --name, -name=value, -name value (not
// for booleans), flags end at the first argument that is not one or at
// "--". The flag package would cost every container start the code it
// brings (its values are reflected on for the help text) for a dozen
// options.

// errHelp is the result of -h, -help and --help: the usage was printed.
var errHelp = errors.New("help requested")

// hookFlag is one option: its name, its usage line, its default as
// --help shows it ("" for none), and where its value goes (exactly one
// of str, dur, boolean).
type hookFlag struct {
	name, usage, def string
	str              *string
	dur              *time.Duration
	boolean          *bool
}

// flagSet is the hook's options, in the order --help lists them
// (sorted by name, as the flag package does).
type flagSet struct {
	flags []hookFlag
	args  []string // what follows the flags
}

// String adds a string option.
func (s *flagSet) String(p *string, name, value, usage string) {
	*p = value
	var def string
	if value != "" {
		def = strconv.Quote(value)
	}
	s.flags = append(s.flags, hookFlag{name: name, usage: usage, def: def, str: p})
}

// Duration adds a duration option.
func (s *flagSet) Duration(p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	var def string
	if value != 0 {
		def = value.String()
	}
	s.flags = append(s.flags, hookFlag{name: name, usage: usage, def: def, dur: p})
}

// Bool adds a boolean option, false by default.
func (s *flagSet) Bool(p *bool, name, usage string) {
	*p = false
	s.flags = append(s.flags, hookFlag{name: name, usage: usage, boolean: p})
}

// lookup finds an option by name.
func (s *flagSet) lookup(name string) *hookFlag {
	for i := range s.flags {
		if s.flags[i].name == name {
			return &s.flags[i]
		}
	}
	return nil
}

// Parse sets the options from args and keeps the rest as Args.
func (s *flagSet) Parse(args []string) error {
	for len(args) > 0 {
		a := args[0]
		if len(a) < 2 || a[0] != '-' {
			break
		}
		args = args[1:]
		name := a[1:]
		if name[0] == '-' {
			if len(name) == 1 { // "--" ends the flags
				break
			}
			name = name[1:]
		}
		if name == "" || name[0] == '-' || name[0] == '=' {
			return errors.New("bad flag syntax: " + a)
		}
		var err error
		if args, err = s.parseOne(name, args); err != nil {
			return err
		}
	}
	s.args = args
	return nil
}

// parseOne sets the option name (with "=value" or its value taken from
// rest) and returns what is left.
func (s *flagSet) parseOne(name string, rest []string) ([]string, error) {
	name, value, hasValue := strings.Cut(name, "=")
	f := s.lookup(name)
	if f == nil {
		if name == "help" || name == "h" {
			return nil, errHelp
		}
		return nil, errors.New("flag provided but not defined: -" + name)
	}
	if f.boolean != nil {
		if !hasValue {
			value = "true"
		}
		v, err := strconv.ParseBool(value)
		if err != nil {
			return nil, errors.New("invalid boolean value " + strconv.Quote(value) + " for -" + name + ": parse error")
		}
		*f.boolean = v
		return rest, nil
	}
	if !hasValue {
		if len(rest) == 0 {
			return nil, errors.New("flag needs an argument: -" + name)
		}
		value, rest = rest[0], rest[1:]
	}
	if f.dur != nil {
		d, err := time.ParseDuration(value)
		if err != nil {
			return nil, errors.New("invalid value " + strconv.Quote(value) + " for flag -" + name + ": parse error")
		}
		*f.dur = d
		return rest, nil
	}
	*f.str = value
	return rest, nil
}

// Args are the arguments after the flags.
func (s *flagSet) Args() []string { return s.args }

// PrintDefaults writes the options' help as the flag package does.
func (s *flagSet) PrintDefaults(w io.Writer) {
	sorted := slices.Clone(s.flags)
	slices.SortFunc(sorted, func(a, b hookFlag) int { return strings.Compare(a.name, b.name) })
	var b strings.Builder
	for _, f := range sorted {
		b.WriteString("  -" + f.name)
		switch {
		case f.str != nil:
			b.WriteString(" string")
		case f.dur != nil:
			b.WriteString(" duration")
		}
		b.WriteString("\n    \t" + strings.ReplaceAll(f.usage, "\n", "\n    \t"))
		if f.def != "" {
			b.WriteString(" (default " + f.def + ")")
		}
		b.WriteString("\n")
	}
	_, _ = io.WriteString(w, b.String())
}
