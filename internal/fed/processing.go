package fed

import (
	"encoding/json"
	"time"
)

// The tasks and messages of federated processing: jobs that run at the
// data (TaskJob, TaskJobCancel; the node reports on MsgJob) and the steps
// of federated analyses, learning rounds and validation (TaskCompute).
const (
	// TaskJob asks one node to run a job under a process permit (the body
	// is a JobBody; the answer a JobAck, signed by the node). Progress,
	// released logs and released outputs then come as JobEvents.
	TaskJob TaskKind = "job"
	// TaskJobCancel asks a node to stop a job (the body is a
	// JobCancelBody; the answer a JobAck).
	TaskJobCancel TaskKind = "job-cancel"
	// TaskCompute asks one node for one step of a federated computation
	// (the body is a ComputeBody; the answer a ComputeAnswer, signed by
	// the node): the partial sums of a regression, one Newton step, a
	// round of training, the phases of secure aggregation, the scores of
	// a validation.
	TaskCompute TaskKind = "compute"
)

// MsgJob carries a JobEvent from a node to the hub.
const MsgJob NodeMessage = "job"

// JobBody is the body of a job task.
type JobBody struct {
	// Job is the hub's job id (the same at every node of one job).
	Job string `json:"job"`
	// Permit is the compact JWS of the researcher's process permit for
	// this node's dataset; the node verifies it itself.
	Permit string `json:"permit"`
	// Researcher is the hub user the job runs for: the node refuses a
	// permit whose sub is someone else.
	Researcher string `json:"researcher"`
	// Spec is the job as submitted (a jobs.Spec, in EUCAIM jobman's
	// shape), signed with the rest of the task.
	Spec json.RawMessage `json:"spec"`
	// Tool is the approved tool the spec names as the hub's catalogue
	// holds it (a jobs.Tool), so the node can check the digest and the
	// reviews against its own allow-list.
	Tool json.RawMessage `json:"tool,omitempty"`
}

// JobCancelBody is the body of a job-cancel task.
type JobCancelBody struct {
	Job    string `json:"job"`
	Reason string `json:"reason,omitempty"`
}

// JobAck is a node's signed answer to a job or job-cancel task.
type JobAck struct {
	Node     string `json:"node"`
	TaskID   string `json:"task_id"`
	Job      string `json:"job"`
	Accepted bool   `json:"accepted"`
	// Refused is a refusal code when not accepted (RefusedPermit, ...);
	// Reason says why in words, never with data.
	Refused string `json:"refused,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// Refusal codes of jobs and computations, beside the search's.
const (
	RefusedPermit    = "permit"    // missing, invalid, expired, revoked, not process, other dataset
	RefusedTool      = "tool"      // not on the node's allow-list, not reviewed
	RefusedExecutor  = "executor"  // the node has no executor for the job's kind
	RefusedFloor     = "floor"     // fewer rows than the node's floor
	RefusedSaturated = "saturated" // too many parameters for the rows
	RefusedLevel     = "level"     // a category level under the floor
	RefusedOverlap   = "overlap"   // too close to an earlier answer's rows
	RefusedDP        = "dp-budget" // the researcher's privacy budget is spent
	RefusedAirlock   = "airlock"   // the output failed the node's checks
	RefusedBusy      = "busy"      // the node runs as many jobs as it allows
	RefusedInvalid   = "invalid"   // a malformed request
)

// Job states, as nodes report them and the hub shows them.
const (
	JobQueued    = "queued"
	JobRunning   = "running"
	JobSucceeded = "succeeded"
	JobFailed    = "failed"
	JobCancelled = "cancelled"
	JobKilled    = "killed"  // a limit was hit (time, memory, disk, processes)
	JobRefused   = "refused" // the node would not run it
	JobHeld      = "held"    // outputs wait for a person's release at the node
)

// JobEvent is what a node reports of a job, signed, on MsgJob. Events
// of one job at one node carry increasing Seq; the hub ignores repeats.
type JobEvent struct {
	Node  string    `json:"node"`
	Job   string    `json:"job"`
	Seq   int64     `json:"seq"`
	Time  time.Time `json:"time"`
	State string    `json:"state"`
	// Progress is between 0 and 1, or -1 when unknown.
	Progress float64 `json:"progress"`
	// Log holds log lines the node's airlock released since the last
	// event.
	Log []string `json:"log,omitempty"`
	// Output is one chunk of an output the airlock released.
	Output *OutputChunk `json:"output,omitempty"`
	// Message says what happened in words (a limit hit, a refusal), never
	// with data.
	Message  string `json:"message,omitempty"`
	ExitCode *int   `json:"exit_code,omitempty"`
}

// MaxOutputChunk bounds the data of one OutputChunk.
const MaxOutputChunk = 512 << 10

// OutputChunk is part of a released output file.
type OutputChunk struct {
	Name   string `json:"name"`
	Offset int64  `json:"offset"`
	Data   []byte `json:"data"`
	// Last marks the final chunk; Size and SHA256 (hex) then describe the
	// whole file.
	Last   bool   `json:"last,omitempty"`
	Size   int64  `json:"size,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
}

// ComputeBody is the body of a compute task.
type ComputeBody struct {
	// Computation is the hub's id of the analysis, learning run or
	// validation; Step names what is asked (package compute defines the
	// steps) and Round counts iterations and rounds from 1.
	Computation string `json:"computation"`
	Step        string `json:"step"`
	Round       int    `json:"round"`
	// Permit and Researcher as in JobBody: the node checks the process
	// permit on every step.
	Permit     string `json:"permit"`
	Researcher string `json:"researcher"`
	// Params are the step's parameters (package compute).
	Params json.RawMessage `json:"params,omitempty"`
	// Peers lists, for secure aggregation, every node taking part in the
	// step with its enrolment key (EncodeKey), so nodes can check one
	// another's signed key adverts.
	Peers []Peer `json:"peers,omitempty"`
}

// Peer is a node taking part in a secure aggregation.
type Peer struct {
	Node string `json:"node"`
	Key  string `json:"key"`
}

// ComputeAnswer is a node's signed answer to a compute task. Result
// holds only what the node's checks let out: sums masked for secure
// aggregation, aggregates over the floor, never rows.
type ComputeAnswer struct {
	Node        string          `json:"node"`
	TaskID      string          `json:"task_id"`
	Computation string          `json:"computation"`
	Step        string          `json:"step"`
	Round       int             `json:"round"`
	Result      json.RawMessage `json:"result,omitempty"`
	// Refused is a refusal code (RefusedFloor, ...), Reason the words.
	Refused string `json:"refused,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Error   string `json:"error,omitempty"`
}

// TableSummary is what the catalogue shows of a research table of a
// Tier 3 dataset: its name and its columns' names and types, never
// values.
type TableSummary struct {
	Name    string          `json:"name"`
	Columns []ColumnSummary `json:"columns"`
	// PatientLinked says the table has a patient column: a snapshot's
	// patients select its rows.
	PatientLinked bool `json:"patient_linked"`
}

// ColumnSummary is one column of a TableSummary.
type ColumnSummary struct {
	Name string `json:"name"`
	Type string `json:"type"` // numeric, integer, categorical, date, text
}
