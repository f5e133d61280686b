"""One thin adapter per AWS service; every AWS call in functions/ goes through these."""
