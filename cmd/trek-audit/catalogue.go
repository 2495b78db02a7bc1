package main

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/trek-go/audit"
)

var actionsCmd = &command{
	name:     "actions",
	synopsis: "actions [--json]",
	summary:  "print the catalogue of action keys, with category and description",
	about: `
Prints every action key the audit library accepts, in the order of TREK's
wiki page "Audit Log": the key, its category (the page's heading, which
list's --action also takes) and its description. It opens no database.`,
	example: "trek-audit actions --json",
	run:     runActions,
}

// actionJSON is one catalogue entry as --json prints it.
type actionJSON struct {
	Action      audit.Action `json:"action"`
	Category    string       `json:"category"`
	Description string       `json:"description"`
}

func runActions(_ context.Context, c *cli, fs *flag.FlagSet, args []string) int {
	asJSON := fs.Bool("json", false, "print a JSON array of {action, category, description}")
	if code, ok := c.parse(fs, args); !ok {
		return code
	}
	cat := audit.Catalogue()
	if *asJSON {
		out := make([]actionJSON, len(cat))
		for i, info := range cat {
			out[i] = actionJSON{info.Action, info.Category, info.Description}
		}
		if err := newJSONPrinter(true).print(c.stdout, out); err != nil {
			return c.fail("actions", err)
		}
		return exitOK
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tCATEGORY\tDESCRIPTION")
	for _, info := range cat {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", info.Action, info.Category, info.Description)
	}
	if err := tw.Flush(); err != nil {
		return c.fail("actions", err)
	}
	return exitOK
}
