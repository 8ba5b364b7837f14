"""The only place that knows both sources and the rules: syncs, decisions, hides, queries."""
