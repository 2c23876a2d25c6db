package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/ocigate/ocigate/internal/agentconfig"
	"github.com/ocigate/ocigate/profiles"
	"github.com/ocigate/ocigate/profiles/policy"
)

// profilesCmd runs `profiles check FILE...`, which exits 1 with
// file:line lines when anything fails to load, and `profiles show [NAME]`,
// which prints compiled profiles.
func profilesCmd(args []string, out, errOut io.Writer) (int, error) {
	if len(args) == 0 {
		return 2, fmt.Errorf("want check or show")
	}
	switch args[0] {
	case "check":
		if len(args) < 2 {
			return 2, fmt.Errorf("profiles check: want at least one FILE")
		}
		c, err := profiles.NewCatalogFiles(true, args[1:]...)
		if err == nil {
			for _, n := range c.Notes() {
				fmt.Fprintln(out, n)
			}
			fmt.Fprintf(out, "ok: %d files\n", len(args)-1)
			return 0, nil
		}
		var perrs policy.Errors
		if errors.As(err, &perrs) {
			for _, e := range perrs {
				fmt.Fprintln(errOut, e.Error())
			}
			return 1, nil
		}
		fmt.Fprintln(errOut, err)
		return 1, nil
	case "show":
		fs := flag.NewFlagSet("profiles show", flag.ContinueOnError)
		dir := fs.String("profiles", agentconfig.DefaultProfileDir, "profiles directory")
		if err := fs.Parse(args[1:]); err != nil {
			return 2, err
		}
		c, err := profiles.NewCatalog(true, *dir)
		if err != nil {
			return 1, err
		}
		list := c.Profiles()
		if fs.NArg() > 0 {
			p, ok := c.Get(fs.Arg(0))
			if !ok {
				return 1, fmt.Errorf("no profile %q", fs.Arg(0))
			}
			list = []*profiles.Profile{p}
		}
		for _, p := range list {
			fmt.Fprintln(out, profiles.Describe(p))
		}
		return 0, nil
	}
	return 2, fmt.Errorf("profiles %q: want check or show", args[0])
}
