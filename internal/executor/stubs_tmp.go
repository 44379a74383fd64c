package executor

func newKubernetesFromConfig(cfg Config) (Executor, error) { return nil, ErrNotImplemented }
