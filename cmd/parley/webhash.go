package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/internal/tlsutil"
	"github.com/parley-chat/parley/protocol/webbundle"
)

// Bounds of what web-hash fetches from a server.
const (
	webHashMaxFiles = 1000
	webHashMaxBytes = 512 << 20 // all files together
	webHashTimeout  = 5 * time.Minute
)

// cmdWebHash fetches the web client a server serves and prints its
// bundle hash (package protocol/webbundle), the one parleyd prints at
// start; with --expect it fails unless the hash is the expected one.
func cmdWebHash(ctx context.Context, e *env, args []string) error {
	fs := e.flags("web-hash", "URL [--expect HEX] [--fingerprint SHA256]")
	expect := fs.String("expect", "", "fail unless the bundle hash is `HEX`")
	fingerprint := fs.String("fingerprint", "", "pin the server's self-signed certificate by its `SHA256` fingerprint, as parleyd prints it")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	base, err := url.Parse(pos[0])
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return usagef("web-hash: %q is not an http:// or https:// URL", pos[0])
	}
	hc := &http.Client{Timeout: webHashTimeout}
	if *fingerprint != "" {
		fp, err := tlsutil.ParseFingerprint(*fingerprint)
		if err != nil {
			return usagef("web-hash: --fingerprint: %v", err)
		}
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, VerifyPeerCertificate: tlsutil.VerifyFingerprint(fp),
		}}
	}
	b, err := fetchBundle(ctx, hc, base)
	if err != nil {
		return err
	}
	hash := webbundle.Hash(b.files)
	if b.announced != "" && b.announced != hash {
		fmt.Fprintf(e.stderr, "parley: the server announces bundle %s (%s) but serves files whose hash is %s\n", b.announced, bundleHeader, hash)
	}
	if e.json {
		type fileJSON struct {
			Name  string `json:"name"`
			Bytes int    `json:"bytes"`
		}
		out := struct {
			Bundle string     `json:"bundle"`
			Files  []fileJSON `json:"files"`
		}{Bundle: hash}
		for _, f := range b.files {
			out.Files = append(out.Files, fileJSON{f.Name, len(f.Data)})
		}
		if err := writeJSON(e.stdout, out); err != nil {
			return err
		}
	} else {
		if e.verbose {
			for _, f := range b.files {
				fmt.Fprintf(e.stderr, "%10d  /%s\n", len(f.Data), f.Name)
			}
		}
		fmt.Fprintln(e.stdout, hash)
	}
	if want := strings.ToLower(strings.TrimSpace(*expect)); want != "" && want != hash {
		return withHint(fmt.Errorf("web-hash: %s serves the bundle %s, not the expected %s", base.Host, hash, want),
			"this server's web client is not the one you expected: do not enter secrets in it until you know why")
	}
	return nil
}

// bundleHeader is the header of the server's page that announces the
// bundle hash (server/webclient.BundleHeader).
const bundleHeader = "X-Parley-Bundle"

// fetchedBundle is the web client as a server serves it.
type fetchedBundle struct {
	files     []webbundle.File
	announced string // the page's bundleHeader
}

// fetchBundle fetches the page, the service worker, the manifest (if
// served) and every asset that any of them, or any asset, names.
func fetchBundle(ctx context.Context, hc *http.Client, base *url.URL) (*fetchedBundle, error) {
	var b fetchedBundle
	total := 0
	fetch := func(name, p string, optional bool) (bool, error) {
		if len(b.files) >= webHashMaxFiles {
			return false, fmt.Errorf("web-hash: %s serves more than %d files", base.Host, webHashMaxFiles)
		}
		data, hdr, err := fetchFile(ctx, hc, base.ResolveReference(&url.URL{Path: p}), webHashMaxBytes-total, optional)
		if err != nil || data == nil {
			return false, err
		}
		total += len(data)
		b.files = append(b.files, webbundle.File{Name: name, Data: data})
		if name == webbundle.IndexName {
			b.announced = hdr.Get(bundleHeader)
		}
		return true, nil
	}
	for _, f := range []struct {
		name, path string
		optional   bool
	}{
		{webbundle.IndexName, "/", false},
		{webbundle.ServiceWorker, "/" + webbundle.ServiceWorker, false},
		{webbundle.Manifest, "/" + webbundle.Manifest, true},
	} {
		if _, err := fetch(f.name, f.path, f.optional); err != nil {
			return nil, err
		}
	}
	seen := map[string]bool{}
	for i := 0; i < len(b.files); i++ {
		f := b.files[i]
		if err := checkAssetName(f); err != nil {
			return nil, err
		}
		if !textFile(f.Name) {
			continue
		}
		for _, ref := range webbundle.Refs(f.Data) {
			if seen[ref] {
				continue
			}
			seen[ref] = true
			if _, err := fetch(ref, "/"+ref, false); err != nil {
				return nil, err
			}
		}
	}
	return &b, nil
}

// checkAssetName checks that an asset's content has the hash its name
// carries; the page, sw.js and the manifest pass.
func checkAssetName(f webbundle.File) error {
	if !strings.HasPrefix(f.Name, webbundle.AssetsDir) {
		return nil
	}
	if want := webbundle.AssetsDir + webbundle.AssetName(assetSource(f.Name), f.Data); want != f.Name {
		return fmt.Errorf("web-hash: /%s: the content's hash is not the one in the name (the content is /%s)", f.Name, want)
	}
	return nil
}

// assetSource returns the source name of a served asset name:
// "assets/app.HASH.js" becomes "app.js".
func assetSource(name string) string {
	name = strings.TrimPrefix(name, webbundle.AssetsDir)
	dir, base := path.Split(name)
	parts := strings.Split(base, ".")
	for i := len(parts) - 1; i >= 1; i-- {
		if len(parts[i]) == webbundle.AssetHashLen && strings.Trim(parts[i], "0123456789abcdef") == "" {
			parts = append(parts[:i], parts[i+1:]...)
			break
		}
	}
	return dir + strings.Join(parts, ".")
}

// textFile reports whether a file of this name may name assets.
func textFile(name string) bool {
	switch path.Ext(name) {
	case ".html", ".js", ".mjs", ".css", ".json", ".webmanifest":
		return true
	}
	return false
}

// fetchFile GETs u and returns its body (decoded: the transport asks for
// gzip and decodes it), at most limit bytes. With optional, a 404
// returns nil data and no error.
func fetchFile(ctx context.Context, hc *http.Client, u *url.URL, limit int, optional bool) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, nil, fmt.Errorf("web-hash: %s: %v", u, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("web-hash: %w: %v", client.ErrServerUnreachable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound && optional {
		return nil, nil, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("web-hash: GET %s: %s", u, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	if err != nil {
		return nil, nil, fmt.Errorf("web-hash: GET %s: %v", u, err)
	}
	if len(data) > limit {
		return nil, nil, errors.New("web-hash: the web client is larger than 512 MB")
	}
	return data, resp.Header, nil
}
