// Package sqlitetest damages SQLite database files for tests of integrity
// checks (the sqlite store's CheckFile, parleyd's start-up check and
// `parleyd admin check`). It is for tests only.
package sqlitetest

import (
	"database/sql"
	"math/rand/v2"
	"os"
	"testing"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// CorruptTable overwrites the root page of table in the closed database at
// path with random bytes from rng. The page is a b-tree page of user data
// past the header page; PRAGMA quick_check walks every b-tree page and
// checks its header (type, cell count, content offset), its cell pointers
// and cells, so random bytes over a whole page fail it unless they happen
// to form a consistent page, a chance far below 2^-32. The WAL is
// checkpointed first, so that no newer copy of the page masks the damage.
func CorruptTable(t testing.TB, path, table string, rng *rand.Rand) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	var root, pageSize int64
	if err := db.QueryRow(`SELECT rootpage FROM sqlite_schema WHERE type = 'table' AND name = $1`, table).Scan(&root); err != nil {
		db.Close()
		t.Fatalf("root page of %s in %s: %v", table, path, err)
	}
	if err := db.QueryRow(`PRAGMA page_size`).Scan(&pageSize); err != nil {
		db.Close()
		t.Fatalf("page size of %s: %v", path, err)
	}
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		db.Close()
		t.Fatalf("checkpoint %s: %v", path, err)
	}
	db.Close()
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > 0 {
		t.Fatalf("%s-wal still holds %d bytes; the corruption would be masked", path, fi.Size())
	}
	if root < 2 {
		t.Fatalf("root page of %s in %s is %d, want a page past the header", table, path, root)
	}
	page := make([]byte, pageSize)
	for i := range page {
		page[i] = byte(rng.Uint32())
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(page, (root-1)*pageSize); err != nil {
		t.Fatalf("write page %d of %s: %v", root, path, err)
	}
}
