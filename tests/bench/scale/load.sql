-- tests/bench/scale/load.sql - loads :n citizens of campaign :'camp' straight into the
-- activation database's tables, writing what RecordEvents would have written for them, all
-- consistent with each other: one citizens row each, one events row per stage reached
-- (collected, then approved, then activated; or collected then rejected), the totals at every
-- level of the tree (neighborhood, ward, district, province; 101 = open follow-ups), the daily
-- rows (ward, Viet Nam day, stage, channel, volunteer), both in 8 counter shards, and the
-- follow-ups of the no-phone and
-- volunteer-phone citizens. Citizen keys are synthetic (sha256 of the index, not HMACs of ID
-- numbers): the benchmark reads counts, never a person. The campaign runs 30 days.
\set ON_ERROR_STOP 1
SET synchronous_commit = off;
SET maintenance_work_mem = '512MB';
SET work_mem = '256MB';

CREATE UNLOGGED TABLE scale_gen AS
WITH w AS (SELECT row_number() OVER (ORDER BY code) - 1 AS i, code FROM units WHERE level = 3),
nw AS (SELECT count(*) AS n FROM w)
SELECT g, sha256(int8send(g)) AS k, w.code AS ward, w.i AS wi,
       w.code || '-' || lpad((1 + (g / nw.n) % 4)::text, 2, '0') AS nb,
       (g * 2654435761) % 100 AS r, g % 10 AS ch,
       timestamptz '2023-07-29 08:00:00+07' + ((g * 7) % 30) * interval '1 day'
           + (g % 36000) * interval '1 second' AS t1
FROM generate_series(1, :n) g, nw JOIN w ON true WHERE w.i = g % nw.n;

CREATE UNLOGGED TABLE scale_cit AS
SELECT g, k, ward, nb, lpad((g % 1000)::text, 3, '0') AS last3,
       CASE WHEN r < 6 THEN 4 WHEN r < 30 THEN 1 WHEN r < 55 THEN 2 ELSE 3 END AS stage,
       t1 AS a1,
       CASE WHEN r >= 30 THEN t1 + interval '1 hour' END AS a2,
       CASE WHEN r >= 55 THEN t1 + interval '2 hours' END AS a3,
       CASE WHEN r < 6 THEN t1 + interval '1 hour' END AS a4,
       CASE ch WHEN 0 THEN 3 WHEN 1 THEN 2 ELSE 1 END AS channel,
       CASE ch WHEN 0 THEN 1 WHEN 1 THEN 2 ELSE 0 END AS fu,
       'V' || wi || '-' || (g % 5) AS vol
FROM scale_gen;
DROP TABLE scale_gen;

INSERT INTO citizens (campaign_id, citizen_key, last3, unit_code, neighborhood_code, cycle,
                      stage, collected_at, approved_at, activated_at, rejected_at,
                      volunteer_code, channel, follow_up_kinds)
SELECT :'camp', k, last3, ward, nb, 1, stage, a1, a2, a3, a4, vol, channel, fu FROM scale_cit;

INSERT INTO events (idempotency_key, campaign_id, citizen_key, unit_code, neighborhood_code,
                    volunteer_code, stage, channel, venue, occurred_at, note, recorded_by,
                    request_id, cycle, volunteer_verified, duty_verdict, message, duplicate)
SELECT 'sc-' || c.g || '-' || s.stage, :'camp', c.k, c.ward, c.nb, c.vol, s.stage, c.channel,
       1 + c.g % 2, s.at, CASE WHEN c.fu > 0 AND s.stage = 1 THEN 'Nhà số ' || c.last3 ELSE '' END,
       'bench-load', 'load', 1, true, 1, '', false
FROM scale_cit c,
     LATERAL (VALUES (1, c.a1), (2, c.a2), (3, c.a3), (4, c.a4)) AS s(stage, at)
WHERE s.at IS NOT NULL;

INSERT INTO follow_ups (campaign_id, citizen_key, kind, unit_code, neighborhood_code,
                        volunteer_code, note, last3, created_at)
SELECT :'camp', k, fu, ward, nb, vol, 'Nhà số ' || last3, last3, a1 FROM scale_cit WHERE fu > 0;

-- Totals at every level: the neighborhood, the ward, its district, the province; spread over
-- 8 counter shards (0004_counter_shards.sql) as the service's 8 workers would have written
-- them, so the reads sum as many rows as after a real ingest.
INSERT INTO totals_shards (campaign_id, unit_code, stage, shard, count)
WITH base AS (
    SELECT c.ward, c.nb, s.stage, c.g % 8 AS shard, count(*) AS n FROM scale_cit c,
        LATERAL (VALUES (1, c.a1), (2, c.a2), (3, c.a3), (4, c.a4),
                        (101, CASE WHEN c.fu > 0 THEN c.a1 END)) AS s(stage, at)
    WHERE s.at IS NOT NULL GROUP BY 1, 2, 3, 4),
chain AS (
    SELECT b.nb AS unit, b.stage, b.shard, b.n FROM base b WHERE b.nb <> ''
    UNION ALL SELECT b.ward, b.stage, b.shard, b.n FROM base b
    UNION ALL SELECT wu.parent_code, b.stage, b.shard, b.n FROM base b
        JOIN units wu ON wu.code = b.ward
    UNION ALL SELECT du.parent_code, b.stage, b.shard, b.n FROM base b
        JOIN units wu ON wu.code = b.ward
        JOIN units du ON du.code = wu.parent_code WHERE du.parent_code IS NOT NULL)
SELECT :'camp', unit, stage, shard, sum(n) FROM chain GROUP BY unit, stage, shard;

INSERT INTO daily_shards (campaign_id, unit_code, day, stage, channel, volunteer_code, shard,
                          count)
SELECT :'camp', c.ward, (s.at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, s.stage, c.channel, c.vol,
       c.g % 8, count(*)
FROM scale_cit c, LATERAL (VALUES (1, c.a1), (2, c.a2), (3, c.a3), (4, c.a4)) AS s(stage, at)
WHERE s.at IS NOT NULL GROUP BY 2, 3, 4, 5, 6, 7;

DROP TABLE scale_cit;
ANALYZE;
