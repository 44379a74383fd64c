package node

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestEnrollHubSilent: a hub that accepts the connection and never
// answers fails enrolment after the client's timeout, even with a
// context that never ends.
func TestEnrollHubSilent(t *testing.T) {
	release := make(chan struct{})
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hub.Close()
	defer close(release)
	old := hubClient.Timeout
	hubClient.Timeout = 300 * time.Millisecond
	defer func() { hubClient.Timeout = old }()

	n, err := Open(context.Background(), Config{Data: t.TempDir(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := n.Enroll(context.Background(), hub.URL, "token", "test")
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("enrolment with a silent hub succeeded")
		}
		t.Logf("enrolment with a silent hub: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("enrolment with a silent hub still waits after 10 s")
	}
}
