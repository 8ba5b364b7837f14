"""TIS: its trainee (person) records and the snapshots of them."""
