package fed

import "regexp"

// The subjects of relayed DICOMweb answers (see package relay). A node
// publishes an answer's head, chunks and end on RelayDataSubject, inside
// its own publish allowance (NodePublishAllow), so no other node can
// write into its streams; the hub grants credit and cancels on
// RelayCreditSubject, which only that node may subscribe to
// (NodeSubscribeAllow).
const subjectRelay = "mosaic.relay."

// RelayDataSubject is the subject node id sends stream's answer on.
func RelayDataSubject(id, stream string) string { return subjectNode + id + ".relay." + stream }

// RelayCreditSubject is the subject the hub grants credit for stream on.
func RelayCreditSubject(id, stream string) string { return subjectRelay + id + "." + stream }

// relayCredits is what node id may subscribe to for credit.
func relayCredits(id string) string { return subjectRelay + id + ".>" }

var streamID = regexp.MustCompile(`^[a-f0-9]{16,64}$`)

// ValidStreamID reports whether s can name a relay stream (a NATS
// subject token; NewID makes them).
func ValidStreamID(s string) bool { return streamID.MatchString(s) }
