package artifact

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"
)

// FleetTokenHeader carries the fleet token.
const FleetTokenHeader = "X-Kestrel-Fleet-Token"

// ErrNotFound is returned by FetchSmall for a 404.
var ErrNotFound = errors.New("not found")

// Fetcher downloads over HTTP or HTTPS with a timeout and a size limit.
type Fetcher struct {
	Client  *http.Client
	MaxSize int64
	// Token is sent (header X-Kestrel-Fleet-Token) to URLs whose scheme and
	// host are in TokenOrigins (the ops-meta URLs), never to other servers.
	Token        string
	TokenOrigins map[string]bool
}

// NewFetcher builds a Fetcher whose every request is bounded by timeout.
func NewFetcher(timeout time.Duration, maxSize int64, token string, metaURLs []string) *Fetcher {
	f := &Fetcher{
		Client:       &http.Client{Timeout: timeout},
		MaxSize:      maxSize,
		Token:        token,
		TokenOrigins: map[string]bool{},
	}
	for _, s := range metaURLs {
		if u, err := url.Parse(s); err == nil {
			f.TokenOrigins[u.Scheme+"://"+u.Host] = true
		}
	}
	return f
}

// Digests of a downloaded file.
type Digests struct {
	Sha256 string // hex
	Md5    string // hex
	Size   int64
}

func (f *Fetcher) get(ctx context.Context, rawURL string) (*http.Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, Refuse(ReasonDownload, "bad artifact URL %q", rawURL)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, Refuse(ReasonDownload, "bad artifact URL %q: %v", rawURL, err)
	}
	if f.Token != "" && f.TokenOrigins[u.Scheme+"://"+u.Host] {
		req.Header.Set(FleetTokenHeader, f.Token)
	}
	resp, err := f.Client.Do(req)
	if err != nil {
		return nil, Refuse(ReasonDownload, "cannot download %s: %v", rawURL, err)
	}
	return resp, nil
}

// Download streams rawURL into w, hashing as it goes. It refuses a body
// over MaxSize (ReasonTooLarge) and a body shorter than its Content-Length
// or cut off mid-stream (ReasonTruncated).
func (f *Fetcher) Download(ctx context.Context, rawURL string, w io.Writer) (Digests, error) {
	resp, err := f.get(ctx, rawURL)
	if err != nil {
		return Digests{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Digests{}, Refuse(ReasonDownload, "cannot download %s: HTTP %s", rawURL, resp.Status)
	}
	if resp.ContentLength > f.MaxSize {
		return Digests{}, Refuse(ReasonTooLarge, "artifact %s is %d bytes, over the limit of %d (download.max_size)", rawURL, resp.ContentLength, f.MaxSize)
	}
	sh, mh := sha256.New(), md5.New()
	n, err := io.Copy(io.MultiWriter(w, sh, mh), io.LimitReader(resp.Body, f.MaxSize+1))
	if n > f.MaxSize {
		return Digests{}, Refuse(ReasonTooLarge, "artifact %s is over the limit of %d bytes (download.max_size)", rawURL, f.MaxSize)
	}
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return Digests{}, Refuse(ReasonTruncated, "truncated download of %s: got %d of %d bytes", rawURL, n, resp.ContentLength)
		}
		var pe *os.PathError
		if errors.As(err, &pe) {
			return Digests{}, fmt.Errorf("cannot write download of %s: %w", rawURL, err)
		}
		return Digests{}, Refuse(ReasonTruncated, "download of %s interrupted after %d bytes: %v", rawURL, n, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return Digests{}, Refuse(ReasonTruncated, "truncated download of %s: got %d of %d bytes", rawURL, n, resp.ContentLength)
	}
	return Digests{Sha256: hex.EncodeToString(sh.Sum(nil)), Md5: hex.EncodeToString(mh.Sum(nil)), Size: n}, nil
}

// FetchSmall gets a small file (a sidecar) of at most 64 KiB. A 404 is
// ErrNotFound.
func (f *Fetcher) FetchSmall(ctx context.Context, rawURL string) ([]byte, error) {
	resp, err := f.get(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, ErrNotFound
	}
	if resp.StatusCode != http.StatusOK {
		return nil, Refuse(ReasonDownload, "cannot download %s: HTTP %s", rawURL, resp.Status)
	}
	const limit = 64 << 10
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, Refuse(ReasonDownload, "cannot download %s: %v", rawURL, err)
	}
	if len(b) > limit {
		return nil, Refuse(ReasonDownload, "%s is over %d bytes", rawURL, limit)
	}
	return b, nil
}
