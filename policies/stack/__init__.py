"""Rules over a whole stack: its exports and the contract wiring across resources."""
