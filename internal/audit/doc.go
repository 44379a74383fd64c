// Package audit is the append-only, hash-chained audit log that the hub and
// every node keep for each action crossing a trust boundary: a federated
// search, a node's enrolment or removal, and later access decisions, job
// runs and downloads. Each end writes its own log, so a data holder can
// check what the hub asked of its node without trusting the hub's copy.
//
// # The file
//
// A log is a text file of one JSON object per line (JSON Lines), each a
// Record, each line ending in "\n":
//
//	{"seq":1,"time":"2025-01-02T03:04:05.000000006Z","actor":"user:alice","action":"search","subject":"q-1","detail":{"count":3},"prev":"000…000","hash":"9f2c…"}
//
// seq counts records from 1 with no gap. time is when the record was
// appended, in UTC, RFC 3339 with exactly nine fractional digits. prev is
// the hash of the previous record (64 "0" for the first). hash is the
// lowercase hex SHA-256 of the record's canonical encoding, defined next.
// Changing, removing, inserting or reordering any record therefore breaks
// the chain at or after that record, and Verify says where.
//
// # Canonical encoding and the hash
//
// The canonical encoding of a record is the JSON object
//
//	{"seq":S,"time":"T","actor":A,"action":B,"subject":C,"detail":D,"prev":"P"}
//
// with exactly these seven members in this order and no whitespace outside
// strings, where S is the decimal sequence number without leading zeros; T
// is the time formatted as TimeLayout, "2006-01-02T15:04:05.000000000Z"
// (UTC, nine fractional digits); A, B and C are JSON strings; D is a JSON
// object with its members sorted by key (byte order) at every depth, {}
// when empty; P is 64 lowercase hex digits (ZeroHash for the first). Strings and numbers are written as Go's
// encoding/json writes them with HTML escaping off: '"' and '\' escaped with
// a backslash, \b \f \n \r \t for those controls, \u00XX (lowercase hex)
// for other control characters, \u2028 and \u2029 escaped, every other
// character as itself in UTF-8 (invalid UTF-8 becomes U+FFFD). A number
// in Detail is written as an integer literal (-?(0|[1-9][0-9]*), kept
// digit for digit however large) when it was encoded as one, and otherwise
// as encoding/json writes its float64 value (shortest form that reads
// back exactly: 0.5, 1e+21, 1.5e-7), so 3e1 and 30.0 become 30.
//
// hash = lowercase hex SHA-256 of those bytes. The line in the file is the
// same bytes with the hash member added last:
//
//	line = canonical[:len(canonical)-1] + `,"hash":"` + hash + `"}` + "\n"
//
// so any program can check a record without re-encoding it: cut the
// trailing `,"hash":"…"}` (75 bytes), append "}", hash what remains.
// Verify does that and also checks that the line is exactly the canonical
// encoding of what it parses to, so no two readers can disagree about
// what a record says (duplicate keys, other spacing or escapes, extra
// members are all rejected).
//
// A line, without its newline, is at most MaxRecordBytes (64 KiB).
//
// # What goes in a record
//
// Entry is what a caller supplies: Actor (who, such as "user:alice" or
// "node:hospital-a"), Action (a lowercase token such as "search" or
// "node.remove"), Subject (what, such as a query or node ID) and Detail
// (small JSON values: a query's canonical description and hash, counts
// returned per dataset, node statuses). Callers must never put patient
// data in an entry: no names, identifiers, dates of birth or row-level
// values, only IDs Mosaic issued, hashes and aggregate counts already past
// disclosure control. The log is kept for years and shown to auditors who
// are not entitled to patient data.
//
// # Durability and crashes
//
// Append writes the line and fsyncs the file before returning, so a record
// whose Append returned nil survives a crash. When many goroutines append at
// once their fsyncs are grouped: one fsync covers every line written before
// it began. Callers should append before acting and not act when Append
// fails, so that an action that happened always has its record.
//
// A crash in the middle of a write can leave a last line without its
// newline. Open treats what follows the last newline (at most
// MaxRecordBytes of it) as such a torn write and cuts it off, even when it
// is a whole record lacking only its newline: its Append never returned,
// so nobody was told it was recorded. Repaired says how many bytes went.
// Any other damage makes Open refuse the file with an error wrapping a
// *VerifyError that names the first bad line, and leave the file as it
// is; an operator then examines it with "mosaic audit verify". Open also
// locks the file so that a second writer, which would fork the chain, is
// refused.
//
// # What verification proves
//
// Verify proves the file is one unbroken chain from its first record to
// its last. It cannot tell a log cut after a complete line, or one
// rewritten from start to end with fresh hashes, from a genuine one. Both
// are caught by comparing the last hash with a head recorded elsewhere
// (Head gives it; the hub can publish it, a node can send it to the hub,
// an operator can write it down): a head, once published, pins every
// record up to it.
package audit
