"""Step logic, one module per state."""
