-- The dispatcher's work list is kept per run: `deliveries_due` leads with the run, so "has this run
-- anything left?" is one probe of it (and of the small `deliveries_leased`), and `deliveries_open`,
-- which every claim and every outcome rewrote for each delivery, goes. Measured on 100,000 deliveries:
-- a claim cost 9.7 us a row with it and 3.9 us without; an outcome 6.6 us and 3.6 us.
DROP INDEX deliveries_open;
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries(run_id, next_attempt_at) WHERE state IN ('queued','retrying');
