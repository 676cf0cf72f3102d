package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/internal/tlsutil"
	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/store"
	"github.com/parley-chat/parley/server/store/postgres"
	"github.com/parley-chat/parley/server/store/sqlite"
)

// openStore opens the configured store and returns it with a
// description for people. With mustExist, a missing SQLite file or
// PostgreSQL schema is an error instead of a new empty database (admin
// commands and backups must not create one by mistake in the wrong
// place). nodeID, when set, names the connections in PostgreSQL's
// pg_stat_activity.
func openStore(ctx context.Context, c Config, mustExist bool, nodeID string) (store.Store, string, error) {
	spec, err := parseStore(c.Store, c.StoreSchema, c.DataDir)
	if err != nil {
		return nil, "", usageError{fmt.Errorf("store: %v", err)}
	}
	switch spec.backend {
	case "sqlite":
		if mustExist {
			if _, err := os.Stat(spec.path); errors.Is(err, fs.ErrNotExist) {
				return nil, "", fmt.Errorf("no database at %s: start parleyd once, or pass --data-dir or --store", spec.path)
			}
		}
		st, err := sqlite.Open(ctx, sqlite.NewConfig(spec.path))
		if err != nil {
			return nil, "", err
		}
		return st, spec.describe(), nil
	case "postgres":
		if mustExist {
			if err := postgresSchemaExists(ctx, spec); err != nil {
				return nil, "", err
			}
		}
		pc := postgres.NewConfig(withApplicationName(spec.dsn, nodeID))
		pc.Schema, pc.MaxConns = spec.schema, c.StoreMaxConns
		if mustExist {
			pc.MaxConns = min(pc.MaxConns, 4)
		}
		st, err := postgres.Open(ctx, pc)
		if err != nil {
			return nil, "", err
		}
		return st, spec.describe(), nil
	}
	return nil, "", fmt.Errorf("store: backend %q not supported", spec.backend)
}

// postgresSchemaExists checks that the store's schema exists and has been
// migrated by parleyd.
func postgresSchemaExists(ctx context.Context, spec storeSpec) error {
	conn, err := pgx.Connect(ctx, spec.dsn)
	if err != nil {
		return fmt.Errorf("connect to %s: %v", spec.describe(), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var ok bool
	err = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'schema_migrations')`, spec.schema).Scan(&ok)
	if err != nil {
		return fmt.Errorf("check schema of %s: %v", spec.describe(), err)
	}
	if !ok {
		return fmt.Errorf("no parleyd schema %q in %s: start parleyd once, or pass --store-schema", spec.schema, spec.describe())
	}
	return nil
}

// postgresSize returns the bytes the schema's tables and indexes take.
func postgresSize(ctx context.Context, spec storeSpec) (int64, error) {
	conn, err := pgx.Connect(ctx, spec.dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int64
	err = conn.QueryRow(ctx, `SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r', 'm')`, spec.schema).Scan(&n)
	return n, err
}

// withApplicationName adds application_name=parleyd NODE to a PostgreSQL
// URL that sets none, so that pg_stat_activity shows which node holds a
// connection.
func withApplicationName(dsn, nodeID string) string {
	if nodeID == "" {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	q := u.Query()
	if q.Has("application_name") {
		return dsn
	}
	q.Set("application_name", "parleyd "+nodeID)
	u.RawQuery = q.Encode()
	return u.String()
}

// storeCommand parses the flags of a command that works on the store:
// the config flags of storeKeys, plus --json when jsonFlag is set. The
// command takes no positional argument when operand is empty, else exactly
// one, which operand describes (such as "the user NAME"); it is returned.
func storeCommand(name string, args []string, e *env, jsonFlag bool, operand string) (c Config, arg string, asJSON bool, err error) {
	var cf configFlags
	fs := newFlagSet(name, e)
	cf.bind(fs, storeKeys())
	if jsonFlag {
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return Config{}, "", false, err
	}
	switch {
	case operand == "" && len(pos) > 0:
		return Config{}, "", false, usagef("%s: unexpected argument %q", name, pos[0])
	case operand != "" && len(pos) != 1:
		return Config{}, "", false, usagef("%s: want exactly one argument, %s", name, operand)
	case operand != "":
		arg = pos[0]
	}
	c, err = loadConfig(&cf, e.getenv)
	if err != nil {
		return Config{}, "", false, usageError{err}
	}
	return c, arg, asJSON, nil
}

// withStore opens the store, runs fn and closes the store.
func withStore(ctx context.Context, c Config, fn func(st store.Store) error) error {
	st, _, err := openStore(ctx, c, true, "")
	if err != nil {
		return err
	}
	err = fn(st)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	return err
}

// cmdBackup writes an online, consistent copy of the database: a SQLite
// file, or for PostgreSQL the store's logical copy (a psql script of
// parleyd's tables, see postgres.Store.Backup).
func cmdBackup(ctx context.Context, args []string, e *env) error {
	c, path, _, err := storeCommand("backup", args, e, false, "the PATH of the new copy")
	if err != nil {
		return err
	}
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("backup: %s already exists; choose a new path", path)
	}
	return withStore(ctx, c, func(st store.Store) error {
		start := e.now()
		if err := st.Backup(ctx, path); err != nil {
			return fmt.Errorf("backup to %s: %v", path, err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("backup to %s: %v", path, err)
		}
		fmt.Fprintf(e.stdout, "backup written to %s (%d bytes in %v)\n", path, fi.Size(), e.now().Sub(start).Round(time.Millisecond))
		if _, ok := st.(*postgres.Store); ok {
			fmt.Fprintf(e.stderr, "note: this is a psql script of parleyd's tables without attachment content; "+
				"back up a PostgreSQL deployment with pg_dump --schema (see docs/deployment.md)\n")
		}
		return nil
	})
}

// cmdAdmin dispatches the admin subcommands.
func cmdAdmin(ctx context.Context, args []string, e *env) error {
	// Config flags may come before the subcommand: parleyd admin --data-dir X users list.
	var cf configFlags
	fs := newFlagSet("admin", e)
	cf.bind(fs, storeKeys())
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{fmt.Errorf("admin: %v", err)}
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return usagef("admin: want a subcommand: invite, users, devices, stats or check")
	}
	// Re-emit the leading flags after the subcommand words so that the
	// leaf command parses them with its own.
	lead := args[:len(args)-len(rest)]
	sub, rest := rest[0], rest[1:]
	verb := ""
	if sub != "stats" && sub != "check" {
		if len(rest) == 0 {
			return usagef("admin %s: want an action", sub)
		}
		verb, rest = rest[0], rest[1:]
	}
	leaf := append(append([]string{}, rest...), lead...)
	name := "admin " + sub
	if verb != "" {
		name += " " + verb
	}
	switch sub + " " + verb {
	case "invite create":
		return adminInviteCreate(ctx, name, leaf, e)
	case "invite list":
		return adminInviteList(ctx, name, leaf, e)
	case "invite delete":
		return adminInviteDelete(ctx, name, leaf, e)
	case "users list":
		return adminUsersList(ctx, name, leaf, e)
	case "users disable", "users enable", "users promote", "users demote":
		return adminUserUpdate(ctx, name, verb, leaf, e)
	case "devices list":
		return adminDevicesList(ctx, name, leaf, e)
	case "devices disable", "devices enable":
		return adminDeviceUpdate(ctx, name, verb, leaf, e)
	case "stats ":
		return adminStats(ctx, name, leaf, e)
	case "check ":
		return adminCheck(ctx, name, leaf, e)
	}
	switch sub {
	case "invite", "users", "devices":
		return usagef("admin %s: unknown action %q", sub, verb)
	}
	return usagef("admin: unknown subcommand %q (want invite, users, devices, stats or check)", sub)
}

// writeJSON writes v as indented JSON with a final newline.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode JSON: %v", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// newInviteCode returns a new invite code and the hash stored for it: 32
// random bytes as unpadded base64url, hashed with SHA-256, as the
// delivery service looks invite codes up.
func newInviteCode(rand io.Reader) (code string, hash []byte, err error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(rand, b); err != nil {
		return "", nil, fmt.Errorf("generate invite code: %v", err)
	}
	code = base64.RawURLEncoding.EncodeToString(b)
	h := sha256.Sum256([]byte(code))
	return code, h[:], nil
}

// createInvite creates an invite and returns its record with the code.
func createInvite(ctx context.Context, st store.Accounts, uses int, ttl time.Duration, now time.Time, rand io.Reader) (protocol.InviteInfo, error) {
	code, hash, err := newInviteCode(rand)
	if err != nil {
		return protocol.InviteInfo{}, err
	}
	now = now.UTC().Truncate(time.Microsecond)
	inv, err := st.CreateInvite(ctx, store.Invite{CodeHash: hash, UsesLeft: uses, Expires: now.Add(ttl), Created: now})
	if err != nil {
		return protocol.InviteInfo{}, err
	}
	info := inviteInfo(inv)
	info.Code = code
	return info, nil
}

// inviteInfo converts a stored invite (without its code).
func inviteInfo(inv store.Invite) protocol.InviteInfo {
	return protocol.InviteInfo{ID: inv.ID, UsesLeft: inv.UsesLeft, Expires: inv.Expires.UTC(), Created: inv.Created.UTC()}
}

// adminInviteCreate creates an invite and prints its code, and its
// invite link when the server's public URL and certificate are known
// (inviteLinkServer).
func adminInviteCreate(ctx context.Context, name string, args []string, e *env) error {
	var cf configFlags
	fs := newFlagSet(name, e)
	cf.bind(fs, storeKeys())
	uses := fs.Int("uses", 1, "number of registrations the invite allows")
	expires := fs.String("expires", "7d", "lifetime of the invite (such as 24h or 7d)")
	asJSON := fs.Bool("json", false, "print JSON")
	linkOnly := fs.Bool("link", false, "print the invite link alone (for 'parley register --link')")
	publicURL := fs.String("url", "", "the server's public `URL` for the invite link, such as https://chat.example.org (default: from server_name, listen and tls)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("%s: unexpected argument %q", name, pos[0])
	}
	if *uses < 1 {
		return usagef("%s: --uses %d: want at least 1", name, *uses)
	}
	ttl, err := parseDuration(*expires)
	if err != nil || ttl <= 0 {
		return usagef("%s: --expires %q: want a positive duration such as 24h or 7d", name, *expires)
	}
	c, err := loadConfig(&cf, e.getenv)
	if err != nil {
		return usageError{err}
	}
	server, fp, err := inviteLinkServer(c, *publicURL)
	if err != nil {
		return err
	}
	if *linkOnly && server == "" {
		return usagef("%s --link: the server's public URL is unknown (tls.mode %q): pass --url https://HOST[:PORT]", name, c.TLS.Mode)
	}
	return withStore(ctx, c, func(st store.Store) error {
		info, err := createInvite(ctx, st, *uses, ttl, e.now(), e.rand)
		if err != nil {
			return fmt.Errorf("create invite: %v", err)
		}
		link := ""
		if server != "" {
			link = protocol.InviteLink{Server: server, Code: info.Code, Fingerprint: fp}.String()
		}
		if *asJSON {
			return writeJSON(e.stdout, struct {
				protocol.InviteInfo
				Link string `json:"link,omitempty"`
			}{info, link})
		}
		if *linkOnly {
			fmt.Fprintf(e.stdout, "%s\n", link)
		} else {
			fmt.Fprintf(e.stdout, "%s\n", info.Code)
		}
		fmt.Fprintf(e.stderr, "invite %d: %d use(s), expires %s; the code is shown only once\n", info.ID, info.UsesLeft, info.Expires.Format(time.RFC3339))
		if link != "" && !*linkOnly {
			fmt.Fprintf(e.stderr, "invite link (for 'parley register --link LINK NAME'):\n%s\n", link)
		}
		return nil
	})
}

// inviteLinkServer returns the server's public URL and its self-signed
// certificate's fingerprint for invite links. The URL is publicURL if
// set, else https://SERVER_NAME with the port of server_name or listen
// (https://DOMAIN with tls.mode acme); it is empty when unknown (TLS off
// behind a proxy, or listen on port 0). The fingerprint is read from the
// certificate parleyd keeps in the data directory (tls.mode self-signed);
// it is empty for other modes, whose certificates a CA signs.
func inviteLinkServer(c Config, publicURL string) (server, fp string, err error) {
	if publicURL != "" {
		u, err := url.Parse(publicURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return "", "", usagef("--url %q: want the server's public URL, such as https://chat.example.org:8443", publicURL)
		}
		server = strings.TrimSuffix(u.String(), "/")
	} else {
		switch c.TLS.Mode {
		case tlsACME:
			if len(c.TLS.ACMEDomains) > 0 {
				server = "https://" + c.TLS.ACMEDomains[0]
			}
		case tlsSelfSigned, tlsFiles:
			host := c.ServerName
			if _, _, err := net.SplitHostPort(c.ServerName); err != nil {
				_, port, err := net.SplitHostPort(c.Listen)
				switch {
				case err != nil || port == "0" || port == "":
					host = ""
				case port != "443":
					host = net.JoinHostPort(c.ServerName, port)
				}
			}
			if host != "" {
				server = "https://" + host
			}
		}
	}
	if c.TLS.Mode != tlsSelfSigned {
		return server, "", nil
	}
	path := filepath.Join(c.DataDir, tlsutil.CertFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		// No certificate yet: a link without it would not connect.
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("invite link: read the server certificate: %v", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return "", "", fmt.Errorf("invite link: %s holds no PEM certificate", path)
	}
	return server, tlsutil.Fingerprint(block.Bytes), nil
}

// adminInviteList lists invites.
func adminInviteList(ctx context.Context, name string, args []string, e *env) error {
	c, _, asJSON, err := storeCommand(name, args, e, true, "")
	if err != nil {
		return err
	}
	return withStore(ctx, c, func(st store.Store) error {
		invs, err := st.Invites(ctx)
		if err != nil {
			return fmt.Errorf("list invites: %v", err)
		}
		list := protocol.InviteList{Invites: []protocol.InviteInfo{}}
		for _, inv := range invs {
			list.Invites = append(list.Invites, inviteInfo(inv))
		}
		if asJSON {
			return writeJSON(e.stdout, list)
		}
		now := e.now()
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tUSES LEFT\tEXPIRES\tCREATED\tSTATUS")
		for _, inv := range list.Invites {
			status := "active"
			switch {
			case inv.UsesLeft < 1:
				status = "used"
			case !now.Before(inv.Expires):
				status = "expired"
			}
			fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\n", inv.ID, inv.UsesLeft, inv.Expires.Format(time.RFC3339), inv.Created.Format(time.RFC3339), status)
		}
		return tw.Flush()
	})
}

// adminInviteDelete deletes an invite by id.
func adminInviteDelete(ctx context.Context, name string, args []string, e *env) error {
	c, arg, _, err := storeCommand(name, args, e, false, "the invite ID")
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || id < 1 {
		return usagef("%s: %q is not an invite ID", name, arg)
	}
	return withStore(ctx, c, func(st store.Store) error {
		if err := st.DeleteInvite(ctx, id); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("delete invite %d: no such invite", id)
			}
			return fmt.Errorf("delete invite %d: %v", id, err)
		}
		fmt.Fprintf(e.stdout, "invite %d deleted\n", id)
		return nil
	})
}

// deviceInfo converts a stored device.
func deviceInfo(d store.Device) protocol.DeviceInfo {
	info := protocol.DeviceInfo{
		ID:           protocol.DeviceID(d.ID),
		SignatureKey: d.SignatureKey,
		Certificate:  d.Certificate,
		Created:      d.Created.UTC(),
		Disabled:     d.Disabled,
	}
	if !d.Revoked.IsZero() {
		r := d.Revoked.UTC()
		info.Revoked = &r
	}
	return info
}

// userInfo converts a stored user with its devices.
func userInfo(u store.User, devs []store.Device) protocol.UserInfo {
	info := protocol.UserInfo{
		Name:        u.Name,
		IdentityKey: u.IdentityKey,
		Devices:     []protocol.DeviceInfo{},
		Admin:       u.Admin,
		Disabled:    u.Disabled,
		Created:     u.Created.UTC(),
	}
	for _, d := range devs {
		info.Devices = append(info.Devices, deviceInfo(d))
	}
	return info
}

// loadUser returns a user by name with its devices.
func loadUser(ctx context.Context, st store.Accounts, name string) (store.User, protocol.UserInfo, error) {
	u, err := st.UserByName(ctx, name)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.User{}, protocol.UserInfo{}, fmt.Errorf("no user %q", name)
		}
		return store.User{}, protocol.UserInfo{}, fmt.Errorf("user %q: %v", name, err)
	}
	devs, err := st.Devices(ctx, u.ID)
	if err != nil {
		return store.User{}, protocol.UserInfo{}, fmt.Errorf("devices of user %q: %v", name, err)
	}
	return u, userInfo(u, devs), nil
}

// adminUsersList lists users.
func adminUsersList(ctx context.Context, name string, args []string, e *env) error {
	c, _, asJSON, err := storeCommand(name, args, e, true, "")
	if err != nil {
		return err
	}
	return withStore(ctx, c, func(st store.Store) error {
		users, err := st.Users(ctx)
		if err != nil {
			return fmt.Errorf("list users: %v", err)
		}
		list := protocol.UserList{Users: []protocol.UserInfo{}}
		for _, u := range users {
			devs, err := st.Devices(ctx, u.ID)
			if err != nil {
				return fmt.Errorf("devices of user %q: %v", u.Name, err)
			}
			list.Users = append(list.Users, userInfo(u, devs))
		}
		if asJSON {
			return writeJSON(e.stdout, list)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tADMIN\tDISABLED\tDEVICES\tCREATED")
		for _, u := range list.Users {
			active := 0
			for _, d := range u.Devices {
				if d.Revoked == nil && !d.Disabled {
					active++
				}
			}
			fmt.Fprintf(tw, "%s\t%t\t%t\t%d/%d\t%s\n", u.Name, u.Admin, u.Disabled, active, len(u.Devices), u.Created.Format(time.RFC3339))
		}
		return tw.Flush()
	})
}

// adminUserUpdate disables, enables, promotes or demotes a user.
func adminUserUpdate(ctx context.Context, name, verb string, args []string, e *env) error {
	c, arg, asJSON, err := storeCommand(name, args, e, true, "the user NAME")
	if err != nil {
		return err
	}
	user := arg
	return withStore(ctx, c, func(st store.Store) error {
		u, _, err := loadUser(ctx, st, user)
		if err != nil {
			return err
		}
		switch verb {
		case "disable", "enable":
			err = st.SetUserDisabled(ctx, u.ID, verb == "disable")
		case "promote", "demote":
			err = st.SetUserAdmin(ctx, u.ID, verb == "promote")
		}
		if err != nil {
			return fmt.Errorf("%s user %q: %v", verb, user, err)
		}
		_, info, err := loadUser(ctx, st, user)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(e.stdout, info)
		}
		fmt.Fprintf(e.stdout, "user %s: admin=%t disabled=%t\n", info.Name, info.Admin, info.Disabled)
		return nil
	})
}

// adminDevicesList lists a user's devices.
func adminDevicesList(ctx context.Context, name string, args []string, e *env) error {
	c, arg, asJSON, err := storeCommand(name, args, e, true, "the user NAME")
	if err != nil {
		return err
	}
	return withStore(ctx, c, func(st store.Store) error {
		_, info, err := loadUser(ctx, st, arg)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(e.stdout, struct {
				User    string                `json:"user"`
				Devices []protocol.DeviceInfo `json:"devices"`
			}{info.Name, info.Devices})
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATUS\tCREATED")
		for _, d := range info.Devices {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", d.ID, deviceStatus(d), d.Created.Format(time.RFC3339))
		}
		return tw.Flush()
	})
}

// deviceStatus describes a device's state in one word.
func deviceStatus(d protocol.DeviceInfo) string {
	switch {
	case d.Revoked != nil:
		return "revoked"
	case d.Disabled:
		return "disabled"
	}
	return "active"
}

// adminDeviceUpdate disables or enables a device.
func adminDeviceUpdate(ctx context.Context, name, verb string, args []string, e *env) error {
	c, arg, asJSON, err := storeCommand(name, args, e, true, "the device ID")
	if err != nil {
		return err
	}
	id := store.DeviceID(arg)
	if !protocol.ValidDeviceID(protocol.DeviceID(id)) {
		return usagef("%s: %q is not a device ID", name, arg)
	}
	return withStore(ctx, c, func(st store.Store) error {
		if err := st.SetDeviceDisabled(ctx, id, verb == "disable"); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("%s device %q: no such device", verb, id)
			}
			return fmt.Errorf("%s device %q: %v", verb, id, err)
		}
		d, err := st.Device(ctx, id)
		if err != nil {
			return fmt.Errorf("device %q: %v", id, err)
		}
		info := deviceInfo(d)
		if asJSON {
			return writeJSON(e.stdout, info)
		}
		fmt.Fprintf(e.stdout, "device %s: %s\n", info.ID, deviceStatus(info))
		return nil
	})
}

// statsJSON is the stable JSON of `parleyd admin stats --json`.
type statsJSON struct {
	Store           string `json:"store"`
	Users           int64  `json:"users"`
	Devices         int64  `json:"devices"`
	Conversations   int64  `json:"conversations"`
	Entries         int64  `json:"entries"`
	InboxEntries    int64  `json:"inbox_entries"`
	KeyPackages     int64  `json:"key_packages"`
	Attachments     int64  `json:"attachments"`
	AttachmentBytes int64  `json:"attachment_bytes"`
	DatabaseBytes   int64  `json:"database_bytes"`
}

// adminStats prints counts.
func adminStats(ctx context.Context, name string, args []string, e *env) error {
	c, _, asJSON, err := storeCommand(name, args, e, true, "")
	if err != nil {
		return err
	}
	st, where, err := openStore(ctx, c, true, "")
	if err != nil {
		return err
	}
	defer st.Close()
	s, err := st.Stats(ctx)
	if err != nil {
		return fmt.Errorf("stats: %v", err)
	}
	out := statsJSON{Store: where, Users: s.Users, Devices: s.Devices, Conversations: s.Conversations,
		Entries: s.Entries, InboxEntries: s.InboxEntries, KeyPackages: s.KeyPackages,
		Attachments: s.Blobs, AttachmentBytes: s.BlobBytes}
	if spec, err := parseStore(c.Store, c.StoreSchema, c.DataDir); err == nil && spec.backend == "sqlite" {
		for _, suffix := range []string{"", "-wal"} {
			if fi, err := os.Stat(spec.path + suffix); err == nil {
				out.DatabaseBytes += fi.Size()
			}
		}
	} else if err == nil && spec.backend == "postgres" {
		n, err := postgresSize(ctx, spec)
		if err != nil {
			return fmt.Errorf("stats: schema size: %v", err)
		}
		out.DatabaseBytes = n
	}
	if asJSON {
		return writeJSON(e.stdout, out)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	for _, row := range []struct {
		k string
		v any
	}{
		{"store", out.Store}, {"users", out.Users}, {"devices", out.Devices}, {"conversations", out.Conversations},
		{"entries", out.Entries}, {"inbox entries", out.InboxEntries}, {"key packages", out.KeyPackages},
		{"attachments", out.Attachments}, {"attachment bytes", out.AttachmentBytes}, {"database bytes", out.DatabaseBytes},
	} {
		fmt.Fprintf(tw, "%s\t%v\n", row.k, row.v)
	}
	return tw.Flush()
}
