// Package jobs is processing jobs as the hub records them, in EUCAIM
// jobman's shape: a researcher submits a job under process permits, the
// hub signs it and sends it to the permitted nodes, and keeps the
// state, released logs and released outputs each node reports; and the
// tool catalogue, where a container image or training program needs
// reviews by two people of two organisations before nodes accept it.
package jobs

// Spec is a job as submitted (jobman's SubmitProps, with the permits it
// runs under).
type Spec struct {
	JobName      string            `json:"jobName"`
	Image        string            `json:"image"`
	Resources    Resources         `json:"resources"`
	CommandArgs  []string          `json:"commandArgs"`
	DatasetsList []string          `json:"datasetsList"`
	Env          []EnvVar          `json:"env"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	DryRun       bool              `json:"dryRun"`
	// Permits are the ids of the researcher's process permits, one per
	// node and dataset the job runs on.
	Permits []string `json:"permits"`
}

// Resources is jobman's resources: a flavor (no-gpu, small-gpu,
// medium-gpu, large-gpu).
type Resources struct {
	Flavor string `json:"flavor"`
}

// EnvVar is one environment variable.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}
