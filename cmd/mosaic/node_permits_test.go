package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/node"
	"github.com/mosaic-imaging/mosaic/internal/permit"
)

// TestNodePermitsCLI: a permit checked by the node (through its link)
// is listed with its researcher, dataset, state and use; require, approve
// and revoke change its state as the node's store then sees it; approval
// and revocation ahead of any use work; bad input is refused clearly.
func TestNodePermitsCLI(t *testing.T) {
	ctx := context.Background()
	data := filepath.Join(t.TempDir(), "node")
	adm := []string{"--data", data}
	mosaic := func(want int, args ...string) string {
		t.Helper()
		code, out, errOut := runMosaic(t, append(args, adm...)...)
		if code != want {
			t.Fatalf("%s: exit %d (want %d)\n%s%s", strings.Join(args, " "), code, want, out, errOut)
		}
		return out + errOut
	}
	mosaic(0, "node", "init")
	mosaic(0, "node", "dataset", "create", "--id", "lung", "--title", "Lung")

	// The node checks a permit once, through a link to a hub that is not
	// there (the link retries in the background; the check needs none of
	// it): refused, since the hub was never heard, and so seen.
	hubPub, hubKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := node.Federation{EnrollResponse: fed.EnrollResponse{Node: "north", NATSURLs: []string{"nats://127.0.0.1:1"}, HubKey: fed.EncodeKey(hubPub)}, Enrolled: time.Now()}
	b, _ := json.Marshal(f)
	if err := os.WriteFile(filepath.Join(data, "federation.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := node.Open(ctx, node.Config{Data: data, KeyMustExist: true, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	l, err := n.StartLink(node.LinkOptions{Heartbeat: time.Hour})
	if err != nil || l == nil {
		t.Fatalf("start link: %v", err)
	}
	now := time.Now()
	tok, err := permit.Sign(hubKey, permit.Claims{ID: "p-seen", Researcher: "u-7", Node: "north", Dataset: "lung", Snapshot: "s-1",
		Operations: []permit.Op{permit.OpView, permit.OpDownload}, NotBefore: now.Add(-time.Minute).Unix(), Expires: now.Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	var pe *node.PermitError
	if _, err := l.CheckPermit(ctx, tok, "u-7", permit.OpView); !errors.As(err, &pe) || pe.Reason != node.ReasonHubUnheard {
		t.Fatalf("check: %v; want %s", err, node.ReasonHubUnheard)
	}
	l.Close()
	n.Close(ctx)

	type listing struct {
		Permits          []node.PermitInfo `json:"permits"`
		ApprovalRequired []string          `json:"approval_required"`
	}
	list := func() (listing, map[string]node.PermitInfo) {
		t.Helper()
		var v listing
		if err := json.Unmarshal([]byte(mosaic(0, "node", "permits", "list", "-o", "json")), &v); err != nil {
			t.Fatal(err)
		}
		m := map[string]node.PermitInfo{}
		for _, p := range v.Permits {
			m[p.ID] = p
		}
		return v, m
	}
	v, m := list()
	p := m["p-seen"]
	if len(v.Permits) != 1 || p.Researcher != "u-7" || p.Dataset != "lung" || p.State != node.PermitActive || p.Refusals != 1 || p.Uses != 0 ||
		strings.Join(p.Ops, ",") != "view,download" || p.Expires == nil || len(v.ApprovalRequired) != 0 {
		t.Fatalf("permits list: %+v", v)
	}

	mosaic(0, "node", "permits", "require", "lung", "on")
	if v, m := list(); m["p-seen"].State != node.PermitPending || strings.Join(v.ApprovalRequired, ",") != "lung" {
		t.Errorf("after require on: %+v", v)
	}
	out := mosaic(0, "node", "permits", "approve", "p-seen")
	for _, want := range []string{"approved at this node, for this content only", "researcher", "u-7", "lung", "s-1", "view,download", "sha256"} {
		if !strings.Contains(out, want) {
			t.Errorf("approve prints no %q:\n%s", want, out)
		}
	}
	if _, m := list(); m["p-seen"].State != node.PermitApproved || m["p-seen"].Approved == nil {
		t.Errorf("after approve: %+v", m["p-seen"])
	}
	if out := mosaic(1, "node", "permits", "approve", "p-seen"); !strings.Contains(out, "approved already") {
		t.Errorf("approve twice: %s", out)
	}
	mosaic(0, "node", "permits", "require", "lung", "off")
	// An id never seen is approved only with the permit itself.
	if out := mosaic(1, "node", "permits", "approve", "p-ahead"); !strings.Contains(out, "never seen") || !strings.Contains(out, "--token") {
		t.Errorf("approve an id never seen: %s", out)
	}
	ahead, err := permit.Sign(hubKey, permit.Claims{ID: "p-ahead", Researcher: "u-9", Node: "north", Dataset: "lung", Snapshot: "s-2",
		Operations: []permit.Op{permit.OpView}, NotBefore: now.Add(-time.Minute).Unix(), Expires: now.Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	if out := mosaic(0, "node", "permits", "approve", "p-ahead", "--token", ahead); !strings.Contains(out, "u-9") || !strings.Contains(out, "s-2") {
		t.Errorf("approve ahead with --token: %s", out)
	}
	out = mosaic(0, "node", "permits", "revoke", "p-seen", "--reason", "left the project")
	if !strings.Contains(out, "the hub is not told") {
		t.Errorf("revoke says: %s", out)
	}
	_, m = list()
	if s := m["p-seen"]; s.State != node.PermitRevoked || s.RevokedAt != "local" || s.RevokeReason != "left the project" {
		t.Errorf("after revoke: %+v", s)
	}
	if s := m["p-ahead"]; s.State != node.PermitApproved || s.Researcher != "u-9" || s.Digest == "" {
		t.Errorf("approved ahead: %+v", s)
	}
	table := mosaic(0, "node", "permits", "list")
	for _, want := range []string{"ID", "STATE", "p-seen", "u-7", "view,download", "revoked", "p-ahead", "approved"} {
		if !strings.Contains(table, want) {
			t.Errorf("permits list table lacks %q:\n%s", want, table)
		}
	}

	// Bad input.
	for _, c := range []struct {
		code int
		args []string
		want string
	}{
		{2, []string{"node", "permits", "require", "lung", "maybe"}, "on or off"},
		{2, []string{"node", "permits", "require", "lung"}, "accepts 2 arg"},
		{1, []string{"node", "permits", "require", "prostate", "on"}, "no dataset"},
		{1, []string{"node", "permits", "approve", "p 1; rm"}, "permit id"},
		{1, []string{"node", "permits", "approve", "p-seen", "--token", "not.a.permit"}, "not a permit"},
		{1, []string{"node", "permits", "revoke", "p-x", "--reason", "tab\there"}, "printable"},
		{1, []string{"node", "permits", "revoke", "p-seen"}, "revoked already"},
		{2, []string{"node", "permits", "list", "-o", "xml"}, "--output"},
	} {
		if out := mosaic(c.code, c.args...); !strings.Contains(out, c.want) {
			t.Errorf("%s: %s; want %q", strings.Join(c.args, " "), out, c.want)
		}
	}
	// The limit is a setting of node.json; a negative one is refused.
	settings := filepath.Join(data, "node.json")
	if err := os.WriteFile(settings, []byte(`{"permit_offline_limit": 60000000000}`), 0o600); err != nil {
		t.Fatal(err)
	}
	mosaic(0, "node", "permits", "list")
	if err := os.WriteFile(settings, []byte(`{"permit_offline_limit": -1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := mosaic(2, "node", "permits", "list"); !strings.Contains(out, "permit_offline_limit") {
		t.Errorf("negative permit_offline_limit: %s", out)
	}
	if code, out, _ := runMosaic(t, "node", "permits", "revoke", "--help"); code != 0 || !strings.Contains(out, "does NOT go to the hub") {
		t.Errorf("revoke --help: %d %s", code, out)
	}
}
