package main

import (
	"database/sql"
	"path/filepath"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/parley-chat/parley/client"
)

// cmdForgetContacts deletes the records of the identity keys a profile
// pinned, as someone with the disk but not the store key could: the rows
// of the store's contacts table.
//
//	forget-contacts PROFILE
func cmdForgetContacts(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: forget-contacts PROFILE")
	}
	path := filepath.Join(ts.Getenv("XDG_CONFIG_HOME"), "parley", args[0], client.StoreFile)
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	ts.Check(err)
	defer db.Close()
	res, err := db.Exec(`DELETE FROM contacts`)
	ts.Check(err)
	if n, _ := res.RowsAffected(); n == 0 {
		ts.Fatalf("forget-contacts %s: no contact rows", args[0])
	}
}
