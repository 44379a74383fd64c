package hub

import "time"

// ProcessingConfig tunes federated processing at the hub.
type ProcessingConfig struct {
	// ToolReviews is how many people must approve a tool (an image
	// digest or a training program) before nodes are sent jobs using it,
	// and ToolOrganisations of how many different organisations they must
	// be (defaults 2 and 2).
	ToolReviews       int `json:"tool_reviews"`
	ToolOrganisations int `json:"tool_organisations"`
	// EpsilonCap is the differential privacy loss (ε at DeltaCap) one
	// researcher may spend across all learning jobs (default 10).
	EpsilonCap float64 `json:"epsilon_cap"`
	DeltaCap   float64 `json:"delta_cap"`
	// StepTimeout bounds one node's answer to one step of a federated
	// computation (default 2 minutes); RoundTimeout one round of training
	// (default 30 minutes). Nodes that have not answered in time drop out
	// of the round.
	StepTimeout  time.Duration `json:"step_timeout"`
	RoundTimeout time.Duration `json:"round_timeout"`
}
