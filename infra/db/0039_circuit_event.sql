-- Every opening of a platform's circuit breaker (docs/uplink.md §7), kept as an event: uplink_circuit
-- holds only the current state. Counted per day by the console's evaluation (稳定性：熔断次数).
CREATE TABLE uplink_circuit_event (
  event_id bigserial PRIMARY KEY,
  destination varchar(40) NOT NULL,
  opened_at timestamptz NOT NULL DEFAULT now(),
  failures integer NOT NULL,                  -- consecutive failures when it opened
  error varchar(500)                          -- the failure that opened it (never record content)
);
CREATE INDEX uplink_circuit_event_time ON uplink_circuit_event (opened_at);
