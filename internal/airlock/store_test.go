package airlock

import (
	"bytes"
	"errors"
	"sync"
	"testing"
)

type auditRec struct {
	mu   sync.Mutex
	recs []AuditEntry
	fail error
}

func (a *auditRec) append(e AuditEntry) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		return a.fail
	}
	a.recs = append(a.recs, e)
	return nil
}

func (a *auditRec) actions() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, r := range a.recs {
		out = append(out, r.Actor+" "+r.Action)
	}
	return out
}

func openTestStore(t *testing.T, pol Policy) (*Store, *auditRec) {
	t.Helper()
	a := &auditRec{}
	s, err := OpenStore(t.TempDir(), StoreOptions{Policy: pol, Audit: a.append})
	if err != nil {
		t.Fatal(err)
	}
	return s, a
}

func TestStoreHoldDecides(t *testing.T) {
	s, a := openTestStore(t, Policy{})
	var released []string
	s.OnRelease(func(h Held, data []byte) {
		if !bytes.Equal(data, model(30)) && h.Name == "m.json" {
			t.Errorf("released data differ")
		}
		released = append(released, h.Name)
	})
	ok, err := s.Hold(Output{Job: "j1", Name: "m.json", Data: model(30)}, Permissions{})
	if err != nil || ok.State != StateReleased {
		t.Fatalf("%+v %v", ok, err)
	}
	held, err := s.Hold(Output{Job: "j1", Name: "notes.txt", Data: []byte("fine\n")}, Permissions{})
	if err != nil || held.State != StateHeld {
		t.Fatalf("%+v %v", held, err)
	}
	refused, err := s.Hold(Output{Job: "j1", Name: "t.json", Data: freq(3, 30)}, Permissions{})
	if err != nil || refused.State != StateRefused {
		t.Fatalf("%+v %v", refused, err)
	}
	if len(released) != 1 || released[0] != "m.json" {
		t.Fatalf("OnRelease got %v", released)
	}
	want := []string{"node airlock-release", "node airlock-hold", "node airlock-refuse"}
	if got := a.actions(); !equal(got, want) {
		t.Fatalf("audit %v, want %v", got, want)
	}
	if _, err := s.Release(refused.ID, "alice"); !errors.Is(err, ErrRefused) {
		t.Fatalf("releasing a refused output: %v", err)
	}
	all, _ := s.List()
	if len(all) != 3 || all[0].ID != ok.ID {
		t.Fatalf("list %+v", all)
	}
	c, err := s.Content(held.ID)
	if err != nil || string(c) != "fine\n" {
		t.Fatalf("content %q %v", c, err)
	}
	unsent, _ := s.Unsent()
	if len(unsent) != 1 || unsent[0].ID != ok.ID {
		t.Fatalf("unsent %+v", unsent)
	}
	if err := s.MarkSent(ok.ID); err != nil {
		t.Fatal(err)
	}
	if unsent, _ := s.Unsent(); len(unsent) != 0 {
		t.Fatalf("unsent after MarkSent: %+v", unsent)
	}
	for _, bad := range []string{"", "../index.db", "out-zz", refused.ID + "x"} {
		if _, err := s.Get(bad); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q): %v", bad, err)
		}
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestStoreTwoPerson(t *testing.T) {
	s, a := openTestStore(t, Policy{TwoPerson: true, ManualRelease: true})
	var released int
	s.OnRelease(func(Held, []byte) { released++ })
	h, err := s.Hold(Output{Job: "j1", Name: "m.json", Data: model(30)}, Permissions{})
	if err != nil || h.State != StateHeld {
		t.Fatalf("manual release must hold: %+v %v", h, err)
	}
	h, err = s.Release(h.ID, "alice")
	if err != nil || h.State != StateHeld || len(h.Approvals) != 1 {
		t.Fatalf("first approval: %+v %v", h, err)
	}
	if _, err := s.Release(h.ID, "alice"); !errors.Is(err, ErrSamePerson) {
		t.Fatalf("same person twice: %v", err)
	}
	if released != 0 {
		t.Fatal("released after one person")
	}
	h, err = s.Release(h.ID, "bob")
	if err != nil || h.State != StateReleased || !equal(h.DecidedBy, []string{"alice", "bob"}) {
		t.Fatalf("second approval: %+v %v", h, err)
	}
	if released != 1 {
		t.Fatalf("OnRelease called %d times", released)
	}
	if _, err := s.Release(h.ID, "carol"); !errors.Is(err, ErrDecided) {
		t.Fatalf("release after release: %v", err)
	}
	want := []string{"node airlock-hold", "person:alice airlock-approve", "person:bob airlock-release"}
	if got := a.actions(); !equal(got, want) {
		t.Fatalf("audit %v, want %v", got, want)
	}
	if _, err := s.Release(h.ID, ""); !errors.Is(err, ErrPerson) {
		t.Fatalf("no person: %v", err)
	}
}

func TestStoreReject(t *testing.T) {
	s, a := openTestStore(t, Policy{ManualRelease: true})
	h, _ := s.Hold(Output{Job: "j1", Name: "m.json", Data: model(30)}, Permissions{})
	h, err := s.Reject(h.ID, "alice", "coefficients of a rare subgroup")
	if err != nil || h.State != StateRejected || h.Reason == "" {
		t.Fatalf("%+v %v", h, err)
	}
	if _, err := s.Release(h.ID, "bob"); !errors.Is(err, ErrDecided) {
		t.Fatalf("release after reject: %v", err)
	}
	got := a.actions()
	if len(got) != 2 || got[1] != "person:alice airlock-reject" || a.recs[1].Detail["reason"] != "coefficients of a rare subgroup" {
		t.Fatalf("audit %v %+v", got, a.recs)
	}
}

func TestStoreAuditFailureStopsEverything(t *testing.T) {
	s, a := openTestStore(t, Policy{})
	var released int
	s.OnRelease(func(Held, []byte) { released++ })
	a.fail = errors.New("disk full")
	if _, err := s.Hold(Output{Job: "j1", Name: "m.json", Data: model(30)}, Permissions{}); err == nil {
		t.Fatal("held without an audit record")
	}
	if released != 0 {
		t.Fatal("released without an audit record")
	}
	if all, _ := s.List(); len(all) != 0 {
		t.Fatalf("kept without an audit record: %+v", all)
	}
	a.fail = nil
	h, _ := s.Hold(Output{Job: "j1", Name: "n.txt", Data: []byte("x")}, Permissions{})
	a.fail = errors.New("disk full")
	if _, err := s.Release(h.ID, "alice"); err == nil {
		t.Fatal("released without an audit record")
	}
	if g, _ := s.Get(h.ID); g.State != StateHeld {
		t.Fatalf("state %s", g.State)
	}
}

func TestStoreJobLimits(t *testing.T) {
	s, _ := openTestStore(t, Policy{MaxFiles: 2, MaxFileBytes: 100, MaxTotalBytes: 150})
	h1, _ := s.Hold(Output{Job: "j1", Name: "a", Data: bytes.Repeat([]byte("a"), 90)}, Permissions{})
	h2, _ := s.Hold(Output{Job: "j1", Name: "b", Data: bytes.Repeat([]byte("b"), 90)}, Permissions{})
	h3, _ := s.Hold(Output{Job: "j1", Name: "c", Data: []byte("c")}, Permissions{})
	big, _ := s.Hold(Output{Job: "j2", Name: "big", Data: bytes.Repeat([]byte("b"), 101)}, Permissions{})
	other, _ := s.Hold(Output{Job: "j3", Name: "a", Data: []byte("x")}, Permissions{})
	if h1.State != StateHeld || h2.State != StateRefused || h3.State != StateRefused || big.State != StateRefused || other.State != StateHeld {
		t.Fatalf("states %s %s %s %s %s", h1.State, h2.State, h3.State, big.State, other.State)
	}
	if big.Stored {
		t.Fatal("an output over the size limit was kept")
	}
	if _, err := s.Content(big.ID); !errors.Is(err, ErrNoContent) {
		t.Fatalf("content of an output not kept: %v", err)
	}
}

func TestStoreConcurrentReleases(t *testing.T) {
	dir := t.TempDir()
	a := &auditRec{}
	s1, _ := OpenStore(dir, StoreOptions{Policy: Policy{TwoPerson: true, ManualRelease: true}, Audit: a.append})
	s2, _ := OpenStore(dir, StoreOptions{Policy: Policy{TwoPerson: true, ManualRelease: true}, Audit: a.append})
	h, _ := s1.Hold(Output{Job: "j", Name: "m.json", Data: model(30)}, Permissions{})
	// Two stores on one folder (as a serving node and the CLI): one
	// person approving through both at once gives one approval.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, s := range []*Store{s1, s2} {
		wg.Go(func() { _, errs[i] = s.Release(h.ID, "alice") })
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("errors %v", errs)
	}
	g, _ := s2.Get(h.ID)
	if len(g.Approvals) != 1 || g.State != StateHeld {
		t.Fatalf("%+v", g)
	}
}

// TestReleasedWithoutContributions: the largest contributions a sum or
// mean carries for the checks never leave the node.
func TestReleasedWithoutContributions(t *testing.T) {
	s, _ := openTestStore(t, Policy{})
	data := magnitude("mean", 12, 10, 60, 40)
	var sent []byte
	s.OnRelease(func(h Held, d []byte) { sent = d })
	h, err := s.Hold(Output{Job: "j", Name: "m.json", Data: data}, Permissions{})
	if err != nil || h.State != StateReleased {
		t.Fatalf("%+v %v", h, err)
	}
	for _, b := range [][]byte{sent, mustReleased(t, s, h.ID)} {
		if bytes.Contains(b, []byte(`"top"`)) || bytes.Contains(b, []byte("60")) || !bytes.Contains(b, []byte(`"value":10`)) {
			t.Fatalf("released %s", b)
		}
	}
	stats := []byte(`{"mosaic_output":"stats","version":1,"statistics":[{"name":"age","statistic":"mean","value":61.25,"count":20,"top":[90,88],"total":1225}]}`)
	if p := Publishable(stats); bytes.Contains(p, []byte("90")) || bytes.Contains(p, []byte("1225")) || !bytes.Contains(p, []byte("61.25")) {
		t.Fatalf("publishable stats %s", p)
	}
	if p := Publishable(model(30)); !bytes.Equal(p, model(30)) {
		t.Fatal("a model changed")
	}
}

func mustReleased(t *testing.T, s *Store, id string) []byte {
	t.Helper()
	b, err := s.ReleasedContent(id)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHoldLog(t *testing.T) {
	s, a := openTestStore(t, Policy{})
	f := NewLogFilter(Policy{}, PseudonymSet([]string{"MOSAIC-ABCDEFGHJKLMNPQR"}))
	rel, held := f.Split([]string{"epoch 1 loss 0.69", "patient MOSAIC-ABCDEFGHJKLMNPQR skipped", "id 12345678"})
	if len(rel) != 1 || len(held) != 2 {
		t.Fatalf("%q %q", rel, held)
	}
	h, err := s.HoldLog("j", held, Permissions{RowLevel: true})
	if err != nil || h.State != StateHeld || h.Name != LogOutputName {
		t.Fatalf("%+v %v", h, err)
	}
	c, _ := s.Content(h.ID)
	if string(c) != "patient MOSAIC-ABCDEFGHJKLMNPQR skipped\nid 12345678\n" {
		t.Fatalf("%q", c)
	}
	if h, err := s.HoldLog("j", nil, Permissions{}); err != nil || h.ID != "" {
		t.Fatalf("%+v %v", h, err)
	}
	if len(a.actions()) != 1 {
		t.Fatalf("audit %v", a.actions())
	}
}
