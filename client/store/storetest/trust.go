package storetest

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/parley-chat/parley/client/store"
)

// tamperer returns o's Tamperer, skipping the test if it has none.
func tamperer(t *testing.T, o Opener) Tamperer {
	t.Helper()
	tp, ok := o.(Tamperer)
	if !ok {
		t.Skip("the Opener cannot change stored records")
	}
	return tp
}

// testTrustRollback: deleting a contact's record, putting back an older
// copy of it, or of all the trust records with their root, is found by
// Open, and the contacts concerned are refused (ErrTrustRollback, never
// ErrNotFound, which would let the caller pin a new key on first use)
// until they are written again.
func testTrustRollback(t *testing.T, newOpener func(t *testing.T) Opener) {
	cases := []struct {
		name string
		// tamper changes the stored data while no store is open on it.
		tamper    func(t *testing.T, o Opener, tp Tamperer)
		want      store.TrustAlarm
		forgotten []string // users without a record that are refused too
	}{
		{
			name: "row deleted",
			tamper: func(t *testing.T, o Opener, tp Tamperer) {
				c := tp.Contacts(t)
				delete(c, tp.ContactKey(t, "bob"))
				tp.SetContacts(t, c)
			},
			want: store.TrustAlarm{Users: []string{"bob"}},
		},
		{
			name: "row replaced by an older copy",
			tamper: func(t *testing.T, o Opener, tp Tamperer) {
				old := tp.Contacts(t)
				s := o.Open(t)
				Update(t, s, func(tx store.Tx) error {
					return tx.PutContact(&store.Contact{User: "bob", IdentityKey: bytes.Repeat([]byte{2}, 32), Verified: true, Pinned: Now})
				})
				s.Close()
				c := tp.Contacts(t)
				bob := tp.ContactKey(t, "bob")
				c[bob] = old[bob]
				tp.SetContacts(t, c)
			},
			want: store.TrustAlarm{Users: []string{"bob"}},
		},
		{
			name: "trust rows and root replaced by an older copy",
			tamper: func(t *testing.T, o Opener, tp Tamperer) {
				oldContacts, oldRoot := tp.Contacts(t), tp.TrustRoot(t)
				s := o.Open(t)
				Update(t, s, func(tx store.Tx) error {
					return errors.Join(
						tx.PutContact(&store.Contact{User: "dave", IdentityKey: bytes.Repeat([]byte{4}, 32), Pinned: Now}),
						tx.PutContact(&store.Contact{User: "bob", IdentityKey: bytes.Repeat([]byte{5}, 32), Pinned: Now}))
				})
				s.Close()
				tp.SetContacts(t, oldContacts)
				tp.SetTrustRoot(t, oldRoot)
			},
			want:      store.TrustAlarm{Users: []string{"bob", "carol"}, Lost: true},
			forgotten: []string{"dave", "mallory"},
		},
		{
			name: "root deleted",
			tamper: func(t *testing.T, o Opener, tp Tamperer) {
				tp.SetTrustRoot(t, nil)
			},
			want:      store.TrustAlarm{Users: []string{"bob", "carol"}, Lost: true},
			forgotten: []string{"mallory"},
		},
		{
			name: "header version deleted",
			tamper: func(t *testing.T, o Opener, tp Tamperer) {
				tp.DeleteTrustVersion(t)
			},
			want:      store.TrustAlarm{Users: []string{"bob", "carol"}, Lost: true},
			forgotten: []string{"mallory"},
		},
	}
	tamperer(t, newOpener(t))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := newOpener(t)
			tp := tamperer(t, o)
			s := o.Open(t)
			Fill(t, s)
			if a := s.TrustAlarm(); a != nil {
				t.Fatalf("alarm on a new store: %+v", a)
			}
			s.Close()
			tc.tamper(t, o, tp)

			s = o.Open(t)
			a := s.TrustAlarm()
			if a == nil || !slices.Equal(a.Users, tc.want.Users) || a.Lost != tc.want.Lost {
				t.Fatalf("TrustAlarm = %+v, want %+v", a, tc.want)
			}
			refused := append(slices.Clone(tc.want.Users), tc.forgotten...)
			checkRefused(t, s, refused)
			if !tc.want.Lost {
				View(t, s, func(tx store.Tx) error {
					if _, err := tx.Contact("mallory"); !errors.Is(err, store.ErrNotFound) {
						t.Errorf("Contact(mallory) = %v, want ErrNotFound", err)
					}
					return nil
				})
			}
			s.Close()

			// The finding is kept: the next Open reports nothing new,
			// and the contacts stay refused.
			s = o.Open(t)
			if a := s.TrustAlarm(); a != nil {
				t.Errorf("TrustAlarm on the next open = %+v, want nil", a)
			}
			checkRefused(t, s, refused)

			// Writing a contact again (after the user's consent) clears it.
			Update(t, s, func(tx store.Tx) error {
				return tx.PutContact(&store.Contact{User: "bob", IdentityKey: bytes.Repeat([]byte{9}, 32), Pinned: Now})
			})
			s.Close()
			s = o.Open(t)
			if a := s.TrustAlarm(); a != nil {
				t.Errorf("TrustAlarm after bob was written again = %+v, want nil", a)
			}
			View(t, s, func(tx store.Tx) error {
				if c, err := tx.Contact("bob"); err != nil || c.IdentityKey[0] != 9 {
					t.Errorf("Contact(bob) after writing it again = %+v, %v", c, err)
				}
				return nil
			})
		})
	}
}

// testTrustSwap: contacts' records swapped with each other fail the
// trust check of Open, which refuses them from then on, while the other
// records still open.
func testTrustSwap(t *testing.T, o Opener) {
	tp := tamperer(t, o)
	s := o.Open(t)
	Fill(t, s)
	s.Close()
	c := tp.Contacts(t)
	bob, carol := tp.ContactKey(t, "bob"), tp.ContactKey(t, "carol")
	if c[bob] == nil || c[carol] == nil || len(c) != 2 {
		t.Fatalf("stored contacts %v, want bob's %q and carol's %q", slices.Collect(maps.Keys(c)), bob, carol)
	}
	c[bob], c[carol] = c[carol], c[bob]
	tp.SetContacts(t, c)
	s = o.Open(t)
	if a := s.TrustAlarm(); a == nil || !slices.Equal(a.Users, []string{"bob", "carol"}) || a.Lost {
		t.Errorf("TrustAlarm after a swap = %+v, want bob and carol", a)
	}
	View(t, s, func(tx store.Tx) error {
		for _, u := range []string{"bob", "carol"} {
			if _, err := tx.Contact(u); !errors.Is(err, store.ErrTrustRollback) {
				t.Errorf("contact %s after swap: %v, want ErrTrustRollback", u, err)
			}
		}
		if _, err := tx.Identity(); err != nil {
			t.Errorf("Identity: %v", err)
		}
		return nil
	})
}

// checkRefused checks that users are refused with ErrTrustRollback and
// that carol, when not among them, still opens.
func checkRefused(t *testing.T, s store.Store, users []string) {
	t.Helper()
	View(t, s, func(tx store.Tx) error {
		for _, u := range users {
			if c, err := tx.Contact(u); !errors.Is(err, store.ErrTrustRollback) {
				t.Errorf("Contact(%s) = %+v, %v, want ErrTrustRollback", u, c, err)
			}
		}
		if !slices.Contains(users, "carol") {
			if c, err := tx.Contact("carol"); err != nil || !c.Verified {
				t.Errorf("Contact(carol) = %+v, %v", c, err)
			}
		}
		return nil
	})
}
