"""The audit log and everything that reads or writes it: the file (log.py: durable lines, rotation, one
process only), the guards' state folded from it (state.py), the journal that keeps it durable when the
disk refuses (journal.py), the typed records it holds (records.py), and its only writer (recorder.py)."""
