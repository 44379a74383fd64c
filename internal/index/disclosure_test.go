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
		if err := s.SaveDisclosure(ctx, disclosure.Batch{Members: []disclosure.Members{{Dataset: "ds", First: 0, Members: members[:3]}}}); err != nil {
			t.Fatal(err)
		}
		created := time.Unix(1700000000, 0).UTC()
		var b disclosure.Batch
		b.Members = []disclosure.Members{{Dataset: "ds", First: 3, Members: members[3:]}}
		for i := range 4 {
			b.Sets = append(b.Sets, disclosure.DatasetSet{Dataset: "ds", StoredSet: disclosure.StoredSet{Set: []byte{byte(i), 0, 0, 0, 0, 0, 0, 0}, Figures: []byte(fmt.Sprintf(`{"subjects":%d}`, 10+i)),
				By: "r1", Query: fmt.Sprint("q", i), Population: i == 0, Created: created}})
		}
		if err := s.SaveDisclosure(ctx, b); err != nil {
			t.Fatal(err)
		}
		// A batch that fails writes nothing of itself.
		bad := disclosure.Batch{Sets: []disclosure.DatasetSet{{Dataset: "ds", StoredSet: disclosure.StoredSet{Set: []byte{9}, Figures: []byte("{}"), Created: created}}},
			Members: []disclosure.Members{{Dataset: "ds", First: 3, Members: members[:1]}}}
		if err := s.SaveDisclosure(ctx, bad); err == nil {
			t.Error("an ordinal was given twice")
		}
		gotM, sets, err := s.LoadDisclosure(ctx, "ds", 3)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(gotM, members) {
			t.Errorf("register %x, want %x", gotM, members)
		}
		// The newest 3 sets, and the population's answer however old.
		if len(sets) != 4 || sets[0].Query != "q0" || !sets[0].Population || sets[1].Query != "q1" || sets[3].Query != "q3" ||
			string(sets[3].Figures) != `{"subjects":13}` || sets[1].Set[0] != 1 || sets[1].Population || !sets[1].Created.Equal(created) {
			t.Errorf("sets %+v", sets)
		}
		if _, all, _ := s.LoadDisclosure(ctx, "ds", 100); len(all) != 4 {
			t.Errorf("the failed batch left %d sets, want 4", len(all))
		}
		// The same members again at their ordinals (a batch retried after
		// a commit whose answer was lost) are accepted.
		if err := s.SaveDisclosure(ctx, disclosure.Batch{Members: []disclosure.Members{{Dataset: "ds", First: 3, Members: members[3:]}}}); err != nil {
			t.Errorf("a retried register batch: %v", err)
		}
		if m, s2, err := s.LoadDisclosure(ctx, "other", 10); err != nil || len(m) != 0 || len(s2) != 0 {
			t.Errorf("another dataset: %v %v %v", m, s2, err)
		}
		if err := s.SaveDisclosure(ctx, disclosure.Batch{Charges: []disclosure.Charge{{Dataset: "ds", Researcher: "r1", Day: "2026-01-01", Epsilon: 0.5},
			{Dataset: "ds", Researcher: "r1", Day: "2026-01-01", Epsilon: 0.25}, {Dataset: "ds", Researcher: "r1", Day: "2026-01-02", Epsilon: 1}, {Dataset: "ds", Researcher: "r2", Day: "2026-01-01", Epsilon: 2}}}); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveDisclosure(ctx, disclosure.Batch{Charges: []disclosure.Charge{{Dataset: "ds2", Researcher: "r1", Day: "2026-01-01", Epsilon: 4}}}); err != nil {
			t.Fatal(err)
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
