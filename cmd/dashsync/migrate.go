package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/dashsync/dashsync/migrations"
	"github.com/dashsync/dashsync/store/postgres"
	"github.com/dashsync/dashsync/store/sqlite"
)

// migrate applies the pending migrations (up) or lists them (status) for the
// configured store.
func migrate(ctx context.Context, c migrateConfig, stdout io.Writer) error {
	target, where := c.DatabaseURL, "postgres"
	if c.DatabaseURL == "" {
		path, err := sqlitePath(c.DataDir)
		if err != nil {
			return err
		}
		target, where = path, "sqlite "+path
	}
	if c.Action == "status" {
		var (
			st  []migrations.MigrationStatus
			err error
		)
		if c.DatabaseURL != "" {
			st, err = postgres.MigrationStatus(ctx, target)
		} else {
			st, err = sqlite.MigrationStatus(ctx, target)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "migrations of %s:\n", where)
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tNAME\tSTATE\tAPPLIED AT")
		for _, m := range st {
			state, at := "pending", "-"
			if m.Applied {
				state, at = "applied", m.AppliedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", m.Version, m.Name, state, at)
		}
		return tw.Flush()
	}
	var (
		applied []int64
		err     error
	)
	if c.DatabaseURL != "" {
		applied, err = postgres.Migrate(ctx, target)
	} else {
		applied, err = sqlite.Migrate(ctx, target)
	}
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintf(stdout, "%s: the schema is up to date\n", where)
		return nil
	}
	for _, v := range applied {
		fmt.Fprintf(stdout, "%s: applied migration %d\n", where, v)
	}
	return nil
}
