package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ocigate/ocigate/internal/agentconfig"
	"github.com/ocigate/ocigate/profiles"
	"github.com/ocigate/ocigate/profiles/policy"
)

const profilesLong = `Work with WorkloadProfiles and TracingPolicies without an agent: check
validates files as the agent would load them (file:line for each
problem); show prints the compiled profiles, the built-ins plus those in
--profiles.`

// newProfilesCmd returns `profiles` and its subcommands.
func newProfilesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "profiles", Short: "check and show profiles (no agent needed)", Long: profilesLong, Args: noArgs,
		RunE: func(*cobra.Command, []string) error { return usagef("profiles: want check or show") }}
	check := &cobra.Command{Use: "check FILE...", Short: "validate profiles and policies; exit 1 with file:line lines on problems",
		Args: minArgs(1, "at least one FILE"), RunE: func(cmd *cobra.Command, args []string) error {
			return profilesCheck(args, cmd.OutOrStdout(), cmd.ErrOrStderr())
		}}
	show := &cobra.Command{Use: "show [NAME]", Short: "print compiled profiles (built-ins plus --profiles DIR)", Args: cobra.MaximumNArgs(1),
		Example: "  ocigate-agentd profiles show reverse-shell --profiles /etc/ocigate/profiles"}
	dir := show.Flags().String("profiles", agentconfig.DefaultProfileDir, "profiles directory")
	formats := outputs{"text", "json", "yaml"}
	output := formats.add(show)
	show.RunE = func(cmd *cobra.Command, args []string) error {
		if err := formats.check(*output); err != nil {
			return err
		}
		return profilesShow(cmd.OutOrStdout(), *dir, args, *output)
	}
	cmd.AddCommand(check, show)
	return cmd
}

// profilesCheck loads files as the agent would; problems go to errOut,
// one per line, and make the exit code 1.
func profilesCheck(files []string, out, errOut io.Writer) error {
	c, err := profiles.NewCatalogFiles(true, files...)
	if err == nil {
		for _, n := range c.Notes() {
			fmt.Fprintln(out, n)
		}
		fmt.Fprintf(out, "ok: %d files\n", len(files))
		return nil
	}
	var perrs policy.Errors
	if errors.As(err, &perrs) {
		for _, e := range perrs {
			fmt.Fprintln(errOut, e.Error())
		}
		return &exitError{code: 1}
	}
	fmt.Fprintln(errOut, err)
	return &exitError{code: 1}
}

// profileSummary is one profile as show -o json and yaml print it: its
// name and the text describing it.
type profileSummary struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// SelectableBy says who may choose the profile by annotation.
	SelectableBy string `json:"selectable_by"`
}

// profilesShow prints the profiles of dir (and the built-ins), or the one
// named.
func profilesShow(out io.Writer, dir string, names []string, format string) error {
	c, err := profiles.NewCatalog(true, dir)
	if err != nil {
		return err
	}
	list := c.Profiles()
	if len(names) > 0 {
		p, ok := c.Get(names[0])
		if !ok {
			return fmt.Errorf("no profile %q (built-ins and %s)", names[0], dir)
		}
		list = []*profiles.Profile{p}
	}
	var sums []profileSummary
	for _, p := range list {
		sums = append(sums, profileSummary{Name: p.Name, Description: profiles.Describe(p), SelectableBy: c.SelectableBy(p.Name)})
	}
	return printData(out, format, sums, func(w io.Writer) error {
		for _, s := range sums {
			fmt.Fprint(w, s.Description)
			fmt.Fprintf(w, "  selectable by annotation: %s\n\n", s.SelectableBy)
		}
		return nil
	})
}
