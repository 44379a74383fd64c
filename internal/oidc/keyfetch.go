package oidc

import (
	"bytes"
	"io"
	"net/http"
	"sync"
	"time"
)

// keyFetchLimit bounds how often the provider's key set is fetched:
// go-oidc fetches it again whenever a token's signature does not verify
// with the keys it holds (an unknown key id, a forged signature), so
// without a bound every forged token presented to the hub would make it
// fetch the keys once. Within KeyRefetch of the last fetch the last
// answer is served again.
type keyFetchLimit struct {
	base http.RoundTripper
	min  time.Duration
	now  func() time.Time

	mu   sync.Mutex
	url  string // the provider's jwks_uri, known after discovery
	last time.Time
	body []byte
}

func (l *keyFetchLimit) setURL(u string) {
	l.mu.Lock()
	l.url = u
	l.mu.Unlock()
}

func (l *keyFetchLimit) RoundTrip(req *http.Request) (*http.Response, error) {
	l.mu.Lock()
	if req.Method != http.MethodGet || l.url == "" || req.URL.String() != l.url {
		l.mu.Unlock()
		return l.base.RoundTrip(req)
	}
	defer l.mu.Unlock()
	if l.body != nil && l.now().Sub(l.last) < l.min {
		return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(bytes.NewReader(l.body)),
			ContentLength: int64(len(l.body)), Request: req}, nil
	}
	resp, err := l.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	l.body, l.last = body, l.now()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	return resp, nil
}
