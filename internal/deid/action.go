package deid

// Action is an action code of PS3.15 E.1.1, or a combination of codes
// that the attribute's Type in the IOD settles.
type Action uint8

// The action codes.
const (
	Keep              Action = iota + 1 // K
	Remove                              // X
	Zero                                // Z: zero length
	Dummy                               // D: a dummy value of the same VR
	Clean                               // C: values of similar meaning without identity
	UID                                 // U: a consistent replacement UID
	RemoveOrZero                        // X/Z
	RemoveOrDummy                       // X/D
	ZeroOrDummy                         // Z/D
	RemoveZeroOrDummy                   // X/Z/D
	RemoveZeroOrUID                     // X/Z/U*: references whose UIDs are replaced
)

var actionCodes = map[string]Action{
	"K": Keep, "X": Remove, "Z": Zero, "D": Dummy, "C": Clean, "U": UID,
	"X/Z": RemoveOrZero, "X/D": RemoveOrDummy, "Z/D": ZeroOrDummy, "X/Z/D": RemoveZeroOrDummy, "X/Z/U*": RemoveZeroOrUID,
}

func parseAction(s string) (Action, bool) {
	a, ok := actionCodes[s]
	return a, ok
}

// String returns the code as PS3.15 writes it.
func (a Action) String() string {
	for k, v := range actionCodes {
		if v == a {
			return k
		}
	}
	return "?"
}

func (a Action) combined() bool { return a >= RemoveOrZero }

// byType settles a combined action with the attribute's Type in the IOD
// (1, 2 or 3; 0 when unknown). Removing a value and emptying it hide the
// same: where the table allows both, an attribute present in the input is
// emptied unless it is known to be Type 3, so that outputs stay valid
// whatever the Type. A dummy value is only used where the attribute is
// known to be Type 1 (or Type 2 where the table offers no empty form).
func (a Action) byType(typ int) Action {
	switch a {
	case RemoveOrZero:
		if typ == 3 {
			return Remove
		}
		return Zero
	case RemoveOrDummy:
		if typ == 1 || typ == 2 {
			return Dummy
		}
		return Remove
	case ZeroOrDummy:
		if typ == 1 {
			return Dummy
		}
		return Zero
	case RemoveZeroOrDummy:
		switch typ {
		case 1:
			return Dummy
		case 3:
			return Remove
		}
		return Zero
	case RemoveZeroOrUID:
		// A reference keeps its structure with every UID replaced, so
		// that references between de-identified objects still resolve.
		return UID
	}
	return a
}
