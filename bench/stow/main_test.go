package main

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// oneShotServer answers each connection's first request with a STOW-RS
// response storing every part, then closes the connection without saying
// so (as a server whose keep-alive timeout has passed does). It checks
// each request's framing (the body is exactly Content-Length bytes of
// multipart/related whose parts are the given files' contents) and counts
// the requests that fail the check, answering none of them.
func oneShotServer(t *testing.T, want [][]byte) (url string, conns, bad *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns, bad = new(atomic.Int32), new(atomic.Int32)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				body, err := io.ReadAll(req.Body)
				if err != nil || int64(len(body)) != req.ContentLength {
					bad.Add(1)
					return
				}
				mt, params, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
				if err != nil || mt != "multipart/related" {
					bad.Add(1)
					return
				}
				mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
				var refs []string
				for i := 0; ; i++ {
					p, err := mr.NextPart()
					if err == io.EOF {
						if i != len(want) {
							bad.Add(1)
							return
						}
						break
					}
					if err != nil {
						bad.Add(1)
						return
					}
					got, _ := io.ReadAll(p)
					if i >= len(want) || !bytes.Equal(got, want[i]) {
						bad.Add(1)
						return
					}
					refs = append(refs, `{"00081155":{"vr":"UI","Value":["1.2.`+string(rune('0'+i))+`"]}}`)
				}
				resp := `{"00081199":{"vr":"SQ","Value":[` + strings.Join(refs, ",") + `]}}`
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/dicom+json\r\nContent-Length: "+
					strconv.Itoa(len(resp))+"\r\n\r\n"+resp)
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/dicom-web/studies", conns, bad
}

func testBatch(t *testing.T, contents ...[]byte) batch {
	t.Helper()
	dir := t.TempDir()
	b := batch{study: "1.2.3"}
	for i, c := range contents {
		p := filepath.Join(dir, strconv.Itoa(i)+".dcm")
		if err := os.WriteFile(p, c, 0o644); err != nil {
			t.Fatal(err)
		}
		b.items = append(b.items, instance{path: p, size: int64(len(c)), sop: "1.2." + strconv.Itoa(i)})
	}
	return b
}

// TestConnResendsOnClosedKeepAlive: the server closes every connection
// after one answer; each later request finds its kept-alive connection
// gone, sends again on a new one, and is counted as stored.
func TestConnResendsOnClosedKeepAlive(t *testing.T) {
	files := [][]byte{bytes.Repeat([]byte{0x0d, 0x0a, '-', '-'}, 50000), []byte("second file")}
	url, conns, bad := oneShotServer(t, files)
	b := testBatch(t, files...)
	c, err := newConn(url, "", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	for i := range 4 {
		r := send(c, b)
		if r.err != nil || r.stored != 2 || r.failed != 0 {
			t.Fatalf("request %d: stored %d, failed %d, err %v", i, r.stored, r.failed, r.err)
		}
		// Let the server's close reach this side before the next request.
		time.Sleep(20 * time.Millisecond)
	}
	if n := conns.Load(); n != 4 {
		t.Errorf("%d connections for 4 requests, want 4 (one per request)", n)
	}
	if n := bad.Load(); n != 0 {
		t.Errorf("%d requests with a body that does not match its Content-Length or its files", n)
	}
}

// TestConnLocalErrorFailsAtOnce: a file that disappears after planning
// fails its request at once instead of leaving the server waiting for the
// rest of the body until the time limit.
func TestConnLocalErrorFailsAtOnce(t *testing.T) {
	files := [][]byte{[]byte("first"), []byte("second")}
	url, _, _ := oneShotServer(t, files)
	b := testBatch(t, files...)
	if err := os.Remove(b.items[1].path); err != nil {
		t.Fatal(err)
	}
	c, err := newConn(url, "", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	t0 := time.Now()
	r := send(c, b)
	if r.err == nil {
		t.Fatal("no error for a missing file")
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("the failure took %v", d)
	}
	if c.c != nil {
		t.Error("the connection with a half-sent body was kept")
	}
}

func TestNewConnRefusesHTTPS(t *testing.T) {
	if _, err := newConn("https://127.0.0.1:1/x", "", time.Second); err == nil {
		t.Error("https URL accepted")
	}
}
