package fed

import (
	"encoding/json"
	"time"
)

// SearchBody is the body of a search task: the query in Samply Lens AST
// form (validated by the hub, validated again by every node) and its id.
type SearchBody struct {
	QueryID string          `json:"query_id"`
	Query   json.RawMessage `json:"query"`
	// User is left empty by current hubs. Hubs before per-node
	// pseudonyms put an unsalted hash of the user id here; nodes fall
	// back to it when Researchers has nothing for them.
	User string `json:"user,omitempty"`
	// Researchers gives, per node id, the asking researcher's pseudonym
	// at that node: a keyed hash only the hub can compute, different at
	// every node, so that nodes can keep a privacy budget per researcher
	// without being able to tell who it is or link them across nodes by
	// the pseudonym alone. The task's signature covers it.
	Researchers map[string]string `json:"researchers,omitempty"`
}

// AgeRange is EUCAIM's age range of a result.
type AgeRange struct {
	Min int `json:"min"`
	Max int `json:"max"`
}

// DatasetResult is one dataset's answer, in the shape of EUCAIM's
// mediator (chaimeleon-eu/dataset-service eucaim_search.py), after the
// node's disclosure control: counts under the node's floor are reported
// as an empty result.
type DatasetResult struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	Description   string    `json:"description"`
	SubjectsCount int       `json:"subjects_count"`
	StudiesCount  int       `json:"studies_count"`
	AgeRange      *AgeRange `json:"age_range"`
	Gender        []string  `json:"gender"`
	Modality      []string  `json:"modality"`
	BodyParts     []string  `json:"body_parts"`
	// Refused is set when the node gave no figures for this dataset
	// because the asking researcher's privacy budget there is spent:
	// RefusedBudgetDay or RefusedBudgetTotal. The counts are then zero
	// and mean nothing.
	Refused string `json:"refused,omitempty"`
	// Budget is what the researcher has left of their privacy budget at
	// this dataset after this answer (nil from nodes that keep none).
	Budget *Budget `json:"budget,omitempty"`
}

// Refusals of a dataset in a search answer (DatasetResult.Refused).
const (
	// RefusedBudgetDay: the researcher's budget at the dataset is spent
	// for the day (UTC); it answers again tomorrow.
	RefusedBudgetDay = "budget-day"
	// RefusedBudgetTotal: the researcher's budget is spent for good.
	RefusedBudgetTotal = "budget-total"
)

// Budget is a researcher's privacy budget at one dataset, in units of
// epsilon (see docs/disclosure.md).
type Budget struct {
	// Charged is what this answer cost (0 for a refusal, or for the
	// same question asked again on unchanged data).
	Charged float64 `json:"charged"`
	// DayLeft is what is left for the current day (UTC).
	DayLeft float64 `json:"day_left"`
	// TotalLeft is what is left for good.
	TotalLeft float64 `json:"total_left"`
}

// SearchAnswer is a node's signed answer to a search task.
type SearchAnswer struct {
	Node     string          `json:"node"`
	TaskID   string          `json:"task_id"`
	Datasets []DatasetResult `json:"datasets"`
	// Error is set when the node could not answer (a bad query); it
	// never carries data.
	Error string `json:"error,omitempty"`
	// Floor is the node's disclosure floor, so the hub can tell users
	// what an empty result may hide.
	Floor  int     `json:"floor"`
	TookMS float64 `json:"took_ms"`
	// Alerts are the attack patterns this question completed at the
	// node, for the hub's operators.
	Alerts []Alert `json:"alerts,omitempty"`
}

// Alert is an attack pattern a node saw in one researcher's questions
// (the researcher named by their pseudonym at that node).
type Alert struct {
	Time       time.Time `json:"time"`
	Dataset    string    `json:"dataset"`
	Researcher string    `json:"researcher"`
	Kind       string    `json:"kind"`
	Count      int       `json:"count"`
	Detail     string    `json:"detail"`
}

// Leaving is what a node sends (MsgLeaving) when it stops cleanly, after
// its last heartbeat. Time is the node's clock, as in its heartbeats:
// the hub ignores heartbeats sent before it that arrive after it.
type Leaving struct {
	Node string    `json:"node"`
	Time time.Time `json:"time"`
}

// Heartbeat is what a node sends every few seconds.
type Heartbeat struct {
	Node     string    `json:"node"`
	Version  string    `json:"version"`
	Time     time.Time `json:"time"`
	Datasets int       `json:"datasets"`
}

// DatasetSummary is what a node publishes of each dataset for the
// catalogue (Tier 1): descriptive fields and aggregates that pass the
// node's disclosure floor.
type DatasetSummary struct {
	ID            string    `json:"id"`
	Title         string    `json:"title"`
	Description   string    `json:"description"`
	Licence       string    `json:"licence"`
	Contact       string    `json:"contact"`
	AccessRights  string    `json:"access_rights"`
	Tier          int       `json:"tier"`
	Subjects      int       `json:"subjects"`
	Studies       int       `json:"studies"`
	Modalities    []string  `json:"modalities"`
	BodyParts     []string  `json:"body_parts"`
	Conditions    []string  `json:"conditions"` // cancer types
	Manufacturers []string  `json:"manufacturers"`
	Sexes         []string  `json:"sexes"`
	AgeRange      *AgeRange `json:"age_range,omitempty"`
	Modified      time.Time `json:"modified"`
	// Tables lists the research tables of a Tier 3 dataset (names,
	// columns and types only).
	Tables []TableSummary `json:"tables,omitempty"`
}

// Catalogue is a node's full catalogue message: every dataset, so that
// the hub can drop the ones removed.
type Catalogue struct {
	Node     string           `json:"node"`
	Time     time.Time        `json:"time"`
	Datasets []DatasetSummary `json:"datasets"`
	// HeldBack are the datasets the node does not publish yet, because
	// checks their tier needs fail: the hub may show them to the node's
	// operators with the reasons, never in the public catalogue.
	HeldBack []HeldBack `json:"held_back,omitempty"`
}

// HeldBack is a dataset a node keeps out of the catalogue, and why
// ("no licence", "no contact point", ...).
type HeldBack struct {
	ID      string   `json:"id"`
	Title   string   `json:"title"`
	Tier    int      `json:"tier"`
	Reasons []string `json:"reasons"`
}

// EnrollRequest is what `mosaic node enroll` posts to the hub.
type EnrollRequest struct {
	Token     string `json:"token"`
	PublicKey string `json:"public_key"` // the node's Ed25519 key, base64
	Version   string `json:"version"`
}

// EnrollResponse is the hub's answer: everything the node stores to
// connect.
type EnrollResponse struct {
	Node         string   `json:"node"`
	NATSURLs     []string `json:"nats_urls"`
	NATSUser     string   `json:"nats_user"`
	NATSPassword string   `json:"nats_password"`
	HubKey       string   `json:"hub_key"` // the hub's Ed25519 public key, base64
	HubURL       string   `json:"hub_url"`
	// NATSCA holds the certificates (PEM) the node trusts for the hub's
	// NATS server, and only those: the hub's own CA, or the top of the
	// operator's chain. Empty when the hub serves NATS without TLS (and
	// in enrolments made before the hub had TLS).
	NATSCA string `json:"nats_ca,omitempty"`
}

// PurposeNATSInfo marks a NATSInfo, so that its signature cannot pass
// for another message's.
const PurposeNATSInfo = "nats-info"

// NATSInfo is how to reach the hub's NATS server, signed by the hub
// (GET /api/v1/nats?nonce=N): a node enrolled before the hub had TLS,
// or whose hub changed its certificate, fetches it again and checks the
// hub's signature with the key it got at enrolment.
type NATSInfo struct {
	Purpose  string    `json:"purpose"` // PurposeNATSInfo
	Nonce    string    `json:"nonce"`   // the node's, echoed
	Time     time.Time `json:"time"`
	NATSURLs []string  `json:"nats_urls"`
	NATSCA   string    `json:"nats_ca,omitempty"`
}
