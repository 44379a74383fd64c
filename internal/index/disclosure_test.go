package index

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/disclosure"
)

// The disclosure control's state round-trips through the index on both
// engines: the register in order, the newest sets up to the limit, and
// budgets per day and in all, kept apart per dataset and researcher.
func TestDisclosureStore(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		var members []disclosure.Member
		for i := range 5 {
			members = append(members, disclosure.MemberOf("ds", fmt.Sprint("p", i)))
		}
		if err := s.AddMembers(ctx, "ds", 0, members[:3]); err != nil {
			t.Fatal(err)
		}
		if err := s.AddMembers(ctx, "ds", 3, members[3:]); err != nil {
			t.Fatal(err)
		}
		if err := s.AddMembers(ctx, "ds", 3, members[:1]); err == nil {
			t.Error("an ordinal was given twice")
		}
		created := time.Unix(1700000000, 0).UTC()
		for i := range 4 {
			st := disclosure.StoredSet{Set: []byte{byte(i), 0, 0, 0, 0, 0, 0, 0}, Figures: []byte(fmt.Sprintf(`{"subjects":%d}`, 10+i)),
				By: "r1", Query: fmt.Sprint("q", i), Population: i == 0, Created: created}
			if err := s.AddSet(ctx, "ds", st); err != nil {
				t.Fatal(err)
			}
		}
		gotM, sets, err := s.LoadDisclosure(ctx, "ds", 3)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(gotM, members) {
			t.Errorf("register %x, want %x", gotM, members)
		}
		if len(sets) != 3 || sets[0].Query != "q1" || sets[2].Query != "q3" || string(sets[2].Figures) != `{"subjects":13}` ||
			sets[0].Set[0] != 1 || sets[0].Population || !sets[0].Created.Equal(created) {
			t.Errorf("sets %+v", sets)
		}
		if m, s2, err := s.LoadDisclosure(ctx, "other", 10); err != nil || len(m) != 0 || len(s2) != 0 {
			t.Errorf("another dataset: %v %v %v", m, s2, err)
		}
		for _, c := range []struct {
			ds, r, day string
			eps        float64
		}{{"ds", "r1", "2026-01-01", 0.5}, {"ds", "r1", "2026-01-01", 0.25}, {"ds", "r1", "2026-01-02", 1}, {"ds", "r2", "2026-01-01", 2}, {"ds2", "r1", "2026-01-01", 4}} {
			if err := s.Charge(ctx, c.ds, c.r, c.day, c.eps); err != nil {
				t.Fatal(err)
			}
		}
		day, total, err := s.Spent(ctx, "ds", "r1", "2026-01-01")
		if err != nil || day != 0.75 || total != 1.75 {
			t.Errorf("spent %v %v %v, want 0.75 1.75", day, total, err)
		}
		if day, total, _ := s.Spent(ctx, "ds", "r3", "2026-01-01"); day != 0 || total != 0 {
			t.Errorf("a new researcher has spent %v %v", day, total)
		}
	})
}
