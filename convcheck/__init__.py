"""convcheck: verify the convergence theory of communication-compressed distributed optimization."""
