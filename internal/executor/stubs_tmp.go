package executor

// NewContainer is filled in below.
func NewContainer(cfg Config) (Executor, error) { return nil, ErrNotImplemented }

func newKubernetesFromConfig(cfg Config) (Executor, error) { return nil, ErrNotImplemented }
