"""The guarded failover start: the checks, the audit log, EM task follow-up, its routes."""
