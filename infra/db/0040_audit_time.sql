-- The audit trail (console audit page, the self-report's "how it was fixed") reads code-mapping
-- changes and configuration bundle steps by time, as console_audit already is (console_audit_time).
CREATE INDEX code_mapping_history_time ON code_mapping_history (made_at);
CREATE INDEX config_bundle_time ON config_bundle (applied_at);
