package dicomweb

// maxUIDLength is the longest UID PS3.5 section 9.1 allows.
const maxUIDLength = 64

// validUID reports whether s is a UID: at most 64 characters, digits in
// non-empty components separated by single dots. The rule against
// leading zeros in a component is not enforced: UIDs breaking it exist in
// real archives and a query or a transfer syntax parameter naming one
// does no harm.
func validUID(s string) bool {
	if len(s) == 0 || len(s) > maxUIDLength {
		return false
	}
	prevDot := true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.':
			if prevDot {
				return false
			}
			prevDot = true
		case c >= '0' && c <= '9':
			prevDot = false
		default:
			return false
		}
	}
	return !prevDot
}
