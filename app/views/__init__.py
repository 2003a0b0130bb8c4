"""Time-synchronised views of one recording (they share the document's time axis)."""
