package httpapi_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/delivery"
	"github.com/parley-chat/parley/server/httpapi"
)

// claimBatch claims KeyPackages of users in one batch.
func (d *device) claimBatch(users ...string) protocol.ClaimKeyPackagesResponse {
	d.e.t.Helper()
	var out protocol.ClaimKeyPackagesResponse
	d.e.must(d.token, "POST", "/v1/keypackages/claim", protocol.ClaimKeyPackagesRequest{Users: users, CipherSuite: uint16(cs)}, &out)
	if len(out.Users) != len(users) {
		d.e.t.Fatalf("batch of %d users answered %d", len(users), len(out.Users))
	}
	return out
}

// names returns n user names, prefix000 on.
func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%03d", prefix, i)
	}
	return out
}

// A batched claim answers each user in the order asked: the packages of
// its devices, the devices that had none, or why nothing was claimed
// (invalid name, no such user, no package at all); the claim of one user
// keeps working beside it.
func TestClaimBatch(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.register("alice")
	bob := e.register("bob")
	bob.upload(3, true)
	bob2 := bob.addDevice() // no package
	carol := e.register("carol")
	dave := e.register("dave")
	dave.upload(1, false)

	r := alice.claimBatch("nobody", "bob", "carol", "Not A Name", "dave")
	if len(r.KeyPackages) != 0 {
		t.Errorf("a batch answered top-level packages: %+v", r.KeyPackages)
	}
	for i, want := range []protocol.ErrorCode{protocol.CodeUnknownUser, "", protocol.CodeNoKeyPackage, protocol.CodeBadRequest, ""} {
		u := r.Users[i]
		var got protocol.ErrorCode
		if u.Error != nil {
			got = u.Error.Code
		}
		if got != want {
			t.Errorf("user %d (%s): error %v, want %q", i, u.User, u.Error, want)
		}
	}
	if u := r.Users[1]; u.User != "bob" || len(u.KeyPackages) != 1 || u.KeyPackages[0].Device != bob.id || u.KeyPackages[0].LastResort ||
		!slices.Equal(u.Missing, []protocol.DeviceID{bob2.id}) {
		t.Errorf("bob: %+v, want a one-time package of %s and %s missing", u, bob.id, bob2.id)
	}
	if u := r.Users[2]; u.User != "carol" || len(u.KeyPackages) != 0 || !slices.Equal(u.Missing, []protocol.DeviceID{carol.id}) {
		t.Errorf("carol: %+v, want her device missing", u)
	}
	if u := r.Users[4]; len(u.KeyPackages) != 1 || u.KeyPackages[0].Device != dave.id {
		t.Errorf("dave: %+v", u)
	}
	// Dave's only package went: his next batch claim has none.
	if u := alice.claimBatch("dave").Users[0]; u.Error == nil || u.Error.Code != protocol.CodeNoKeyPackage {
		t.Errorf("dave after his last package: %+v", u)
	}
	// The claim of one user answers as before.
	if one := alice.claim("bob"); len(one.KeyPackages) != 1 || len(one.Users) != 0 || !slices.Equal(one.Missing, []protocol.DeviceID{bob2.id}) {
		t.Errorf("single claim: %+v", one)
	}

	claim := func(req any) protocol.ClaimKeyPackagesRequest {
		switch r := req.(type) {
		case []string:
			return protocol.ClaimKeyPackagesRequest{Users: r, CipherSuite: uint16(cs)}
		}
		return req.(protocol.ClaimKeyPackagesRequest)
	}
	pe := e.wantErr(protocol.CodeTooLarge, alice.token, "POST", "/v1/keypackages/claim", claim(names("u", protocol.MaxBatchUsers+1)))
	t.Logf("over the maximum: %s", pe.Message)
	e.wantErr(protocol.CodeBadRequest, alice.token, "POST", "/v1/keypackages/claim", claim([]string{"bob", "dave", "bob"}))
	e.wantErr(protocol.CodeBadRequest, alice.token, "POST", "/v1/keypackages/claim", protocol.ClaimKeyPackagesRequest{User: "bob", Users: []string{"dave"}, CipherSuite: uint16(cs)})
	e.wantErr(protocol.CodeBadRequest, alice.token, "POST", "/v1/keypackages/claim", protocol.ClaimKeyPackagesRequest{CipherSuite: uint16(cs)})
	e.wantErr(protocol.CodeUnsupported, alice.token, "POST", "/v1/keypackages/claim", protocol.ClaimKeyPackagesRequest{Users: []string{"bob"}, CipherSuite: 0x7777})
	e.wantErr(protocol.CodeUnauthorized, "", "POST", "/v1/keypackages/claim", claim([]string{"bob"}))
	e.wantErr(protocol.CodeUnauthorized, "not-a-token", "POST", "/v1/keypackages/claim", claim([]string{"bob"}))
}

// A batch costs the claiming account one claim per user it names (known
// or not): the bucket of claims_per_user pays for a batch or refuses it
// with rate_limited and Retry-After; a batch larger than the bucket is
// refused with too_large. Each user of a batch also costs a claim of its
// (claimer, target) pair: past that limit the user alone is refused.
func TestClaimBatchLimits(t *testing.T) {
	e := newEnv(t, func(d *delivery.Config, h *httpapi.Config) {
		h.RateLimits.ClaimsPerUser = httpapi.Rate{PerSecond: 1, Burst: 600}
		d.ClaimRate, d.ClaimBurst = 0.001, 2
	})
	alice := e.register("alice")
	bob := e.register("bob")
	bob.upload(5, true)
	dave := e.register("dave")
	dave.upload(5, true)

	alice.claimBatch(append(names("u", 497), "bob", "dave")...) // 499 of 600
	r := alice.claimBatch("bob", "dave")                        // 501
	for _, u := range r.Users {
		if u.Error != nil || len(u.KeyPackages) != 1 {
			t.Errorf("second claim of %s: %+v", u.User, u)
		}
	}
	// Alice's pair with bob is spent (2 claims): bob alone is refused in
	// a batch that claims carol.
	carol := e.register("carol")
	carol.upload(1, false)
	r = alice.claimBatch("bob", "carol") // 503
	if r.Users[0].Error == nil || r.Users[0].Error.Code != protocol.CodeRateLimited || len(r.Users[0].KeyPackages) != 0 {
		t.Errorf("third claim of bob by alice: %+v, want rate_limited", r.Users[0])
	}
	if r.Users[1].Error != nil || len(r.Users[1].KeyPackages) != 1 {
		t.Errorf("carol beside a limited bob: %+v", r.Users[1])
	}
	// Another claimer has pairs of its own.
	if u := dave.claimBatch("bob").Users[0]; u.Error != nil {
		t.Errorf("dave's claim of bob: %+v", u)
	}

	// 97 tokens are left: a batch of 100 waits for 3 more.
	status, pe := e.call(alice.token, "POST", "/v1/keypackages/claim", protocol.ClaimKeyPackagesRequest{Users: names("v", 100), CipherSuite: uint16(cs)}, nil)
	if pe == nil || pe.Code != protocol.CodeRateLimited || status != http.StatusTooManyRequests {
		t.Fatalf("batch past the bucket: %d %v, want 429 rate_limited", status, pe)
	}
	// A refused batch takes nothing: 97 users still pass.
	alice.claimBatch(names("w", 97)...)
	e.clock.Advance(100 * time.Second)
	alice.claimBatch(names("v", 100)...)
	// More users than the bucket holds can never pass.
	e2 := newEnv(t, func(d *delivery.Config, h *httpapi.Config) {
		h.RateLimits.ClaimsPerUser = httpapi.Rate{PerSecond: 1, Burst: 100}
	})
	a2 := e2.register("alice")
	pe = e2.wantErr(protocol.CodeTooLarge, a2.token, "POST", "/v1/keypackages/claim", protocol.ClaimKeyPackagesRequest{Users: names("x", 101), CipherSuite: uint16(cs)})
	t.Logf("over the bucket: %s", pe.Message)
	a2.claimBatch(names("x", 100)...)
}

// A batched lookup answers the records of the users that exist, in the
// order asked, and lists the other names; it is limited per account by
// lookups_per_user, counted in users.
func TestLookupUsers(t *testing.T) {
	e := newEnv(t, func(d *delivery.Config, h *httpapi.Config) {
		h.RateLimits.LookupsPerUser = httpapi.Rate{PerSecond: 1, Burst: 20}
	})
	alice := e.register("alice")
	bob := e.register("bob")
	bob2 := bob.addDevice()
	e.register("carol")

	var r protocol.LookupUsersResponse
	e.must(alice.token, "POST", "/v1/users/lookup", protocol.LookupUsersRequest{Users: []string{"carol", "nobody", "bob", "Not A Name"}}, &r)
	if len(r.Users) != 2 || r.Users[0].Name != "carol" || r.Users[1].Name != "bob" || !slices.Equal(r.Unknown, []string{"nobody", "Not A Name"}) {
		t.Fatalf("lookup answered %+v", r)
	}
	var one protocol.UserInfo
	e.must(alice.token, "GET", "/v1/users/bob", nil, &one)
	got := r.Users[1]
	if len(got.Devices) != 2 || !slices.ContainsFunc(got.Devices, func(d protocol.DeviceInfo) bool { return d.ID == bob2.id }) ||
		string(got.IdentityKey) != string(one.IdentityKey) || string(got.Devices[0].Certificate) != string(one.Devices[0].Certificate) {
		t.Errorf("bob in the batch: %+v, alone: %+v", got, one)
	}
	e.wantErr(protocol.CodeBadRequest, alice.token, "POST", "/v1/users/lookup", protocol.LookupUsersRequest{})
	e.wantErr(protocol.CodeBadRequest, alice.token, "POST", "/v1/users/lookup", protocol.LookupUsersRequest{Users: []string{"bob", "bob"}})
	e.wantErr(protocol.CodeTooLarge, alice.token, "POST", "/v1/users/lookup", protocol.LookupUsersRequest{Users: names("u", protocol.MaxBatchUsers+1)})
	e.wantErr(protocol.CodeTooLarge, alice.token, "POST", "/v1/users/lookup", protocol.LookupUsersRequest{Users: names("u", 21)})
	e.wantErr(protocol.CodeUnauthorized, "", "POST", "/v1/users/lookup", protocol.LookupUsersRequest{Users: []string{"bob"}})
	// 4 of 20 used: 16 pass, the 17th waits a second.
	e.must(alice.token, "POST", "/v1/users/lookup", protocol.LookupUsersRequest{Users: names("u", 16)}, &r)
	e.wantErr(protocol.CodeRateLimited, alice.token, "POST", "/v1/users/lookup", protocol.LookupUsersRequest{Users: []string{"bob"}})
	e.clock.Advance(time.Second)
	e.must(alice.token, "POST", "/v1/users/lookup", protocol.LookupUsersRequest{Users: []string{"bob"}}, &r)
}
