"""Who receives: lists and imports, double opt-in, suppression."""
