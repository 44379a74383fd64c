package access

// DUOTerm is a Data Use Ontology term a request may name for its purpose.
type DUOTerm struct {
	ID    string `json:"id"`
	Code  string `json:"code"`
	Label string `json:"label"`
}

// DUO lists the Data Use Ontology (GA4GH DUO) terms requests may name:
// the permissions and the modifiers in common use.
var DUO = []DUOTerm{
	{"DUO:0000004", "NRES", "no restriction"},
	{"DUO:0000042", "GRU", "general research use"},
	{"DUO:0000006", "HMB", "health or medical or biomedical research"},
	{"DUO:0000007", "DS", "disease specific research"},
	{"DUO:0000011", "POA", "population origins or ancestry research only"},
	{"DUO:0000043", "CC", "clinical care use"},
	{"DUO:0000044", "NPOA", "population origins or ancestry research prohibited"},
	{"DUO:0000045", "NPU", "not-for-profit organisation use only"},
	{"DUO:0000046", "NCU", "non-commercial use only"},
	{"DUO:0000018", "NPUNCU", "not-for-profit, non-commercial use only"},
	{"DUO:0000015", "NMDS", "no general methods research"},
	{"DUO:0000016", "GSO", "genetic studies only"},
	{"DUO:0000012", "RS", "research specific restrictions"},
	{"DUO:0000019", "PUB", "publication required"},
	{"DUO:0000020", "COL", "collaboration required"},
	{"DUO:0000021", "IRB", "ethics approval required"},
	{"DUO:0000022", "GS", "geographical restriction"},
	{"DUO:0000024", "MOR", "publication moratorium"},
	{"DUO:0000025", "TS", "time limit on use"},
	{"DUO:0000026", "US", "user specific restriction"},
	{"DUO:0000027", "PS", "project specific restriction"},
	{"DUO:0000028", "IS", "institution specific restriction"},
	{"DUO:0000029", "RTN", "return to database or resource"},
}

// duoTerm returns the term with id, if DUO lists it.
func duoTerm(id string) (DUOTerm, bool) {
	for _, t := range DUO {
		if t.ID == id {
			return t, true
		}
	}
	return DUOTerm{}, false
}
