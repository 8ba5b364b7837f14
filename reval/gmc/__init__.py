"""GMC Connect: its doctor records and the snapshots of its designated-body lists."""
