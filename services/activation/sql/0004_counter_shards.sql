-- Counters spread over rows, one per worker (shard), summed by the views that keep the old
-- names. Every batch of RecordEvents adds to the province's and the district's totals; with
-- one row per (campaign, unit, stage) every batch waited for the one before it to commit -
-- the row lock is held until the commit is on disk - so concurrent batches ran one at a time
-- (the ingest benchmark saw most of its time in Lock:transactionid on totals). A worker only
-- ever writes its own shard, so batches in flight at once no longer wait for each other;
-- readers sum at most one row per worker. The service's own reads go to the shard tables
-- and sum there, after filtering: the planner cannot push a filter with a subquery (unit IN
-- (the subtree)) into an aggregating view, so through the view it would sum the whole
-- campaign first. The views are for people and tests.
ALTER TABLE totals RENAME TO totals_shards;
ALTER TABLE totals_shards ADD COLUMN shard smallint NOT NULL DEFAULT 0 CHECK (shard >= 0);
ALTER TABLE totals_shards DROP CONSTRAINT totals_pkey;
ALTER TABLE totals_shards ADD PRIMARY KEY (campaign_id, unit_code, stage, shard);
-- The open follow-ups (101) are opened by one worker and may be resolved by another: a shard
-- of it may go below zero; the sum cannot (the tests check it).
ALTER TABLE totals_shards DROP CONSTRAINT totals_count_check;
ALTER TABLE totals_shards ADD CONSTRAINT totals_shards_count_check
    CHECK (count >= 0 OR stage = 101);
CREATE VIEW totals AS
    SELECT campaign_id, unit_code, stage, sum(count)::integer AS count
    FROM totals_shards GROUP BY campaign_id, unit_code, stage;

ALTER TABLE daily RENAME TO daily_shards;
ALTER TABLE daily_shards ADD COLUMN shard smallint NOT NULL DEFAULT 0 CHECK (shard >= 0);
ALTER TABLE daily_shards DROP CONSTRAINT daily_pkey;
ALTER TABLE daily_shards ADD PRIMARY KEY (campaign_id, unit_code, day, stage, channel,
                                          volunteer_code, shard);
CREATE VIEW daily AS
    SELECT campaign_id, unit_code, day, stage, channel, volunteer_code,
           sum(count)::integer AS count
    FROM daily_shards GROUP BY campaign_id, unit_code, day, stage, channel, volunteer_code;
