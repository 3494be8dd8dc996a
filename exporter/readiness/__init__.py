"""Readiness before the disaster, in one room: each plan VM's newest replica point, read in a loop of its
own (reader.py, with checks.py asking for VMs by name and replica_book.py keeping what is known), the
value it publishes (state.py), its metrics (collector.py) and its table on /status (status_table.py)."""
