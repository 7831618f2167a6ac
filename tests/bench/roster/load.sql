-- tests/bench/roster/load.sql - the data CheckDuty is measured on, put in by direct SQL.
--
--   psql -v camp=CAMPAIGN_ID -f load.sql     (on the roster database, after the upsert phase)
--
-- Thuận An's tree as units.csv has it (Bình Dương > Thuận An > its 10 wards, each with its real
-- number of neighborhoods, 59 in all, coded WARD-01..), one campaign over the 10 weekend days of
-- 2023-07-29..2023-08-27 with a wave of 300 seats each, and 3,000 assignments: 30 volunteers a
-- ward a wave, each volunteer on one day only (so the same volunteer on another day is a miss).
-- The volunteers are the first 3,000 by code, the RPC side's first insert round (P0.....).
-- A third are placed at a neighborhood; 1 in 20 is a no-show, the others planned, checked in or
-- checked out, as a finished campaign would leave them. waves.assigned is kept as the service
-- keeps it (seats held: every status but no-show). ANALYZE at the end, so that neither side of
-- the measurement meets autovacuum's first analyze of these tables halfway through.
\set ON_ERROR_STOP on
BEGIN;

CREATE TEMP TABLE bench_wards (code text, name text, hoods int) ON COMMIT DROP;
INSERT INTO bench_wards VALUES
  ('25966', 'Lái Thiêu', 6), ('25963', 'An Thạnh', 7), ('25969', 'Bình Chuẩn', 6),
  ('25972', 'Thuận Giao', 6), ('25975', 'An Phú', 4), ('25978', 'Hưng Định', 8),
  ('25981', 'An Sơn', 4), ('25984', 'Bình Nhâm', 6), ('25987', 'Bình Hòa', 4),
  ('25990', 'Vĩnh Phú', 8);

-- parent_code's foreign key is deferred: the order of these inserts does not matter.
INSERT INTO units (code, name, level, parent_code, version) VALUES
  ('74', 'Bình Dương', 1, NULL, 1), ('725', 'Thuận An', 2, '74', 1);
INSERT INTO units (code, name, level, parent_code, version)
SELECT code, name, 3, '725', 1 FROM bench_wards;
INSERT INTO units (code, name, level, parent_code, version)
SELECT w.code || '-' || lpad(n::text, 2, '0'), 'Khu phố ' || n, 4, w.code, 1
FROM bench_wards w, generate_series(1, w.hoods) n;
SELECT setval('unit_tree_version', 1);

INSERT INTO campaigns (id, name, starts_on, ends_on, unit_code)
VALUES (:'camp', 'Ngày cuối tuần tình nguyện về cơ sở', '2023-07-29', '2023-08-27', '725');
INSERT INTO waves (campaign_id, day, capacity)
SELECT :'camp', d::date, 300
FROM generate_series(date '2023-07-29', date '2023-08-27', interval '1 day') d
WHERE extract(isodow FROM d) IN (6, 7);

WITH v AS (SELECT code, (row_number() OVER (ORDER BY code) - 1)::int AS n
           FROM volunteers WHERE active ORDER BY code LIMIT 3000),
     d AS (SELECT day, (row_number() OVER (ORDER BY day) - 1)::int AS k
           FROM waves WHERE campaign_id = :'camp'),
     w AS (SELECT code, (row_number() OVER (ORDER BY code) - 1)::int AS k
           FROM units WHERE level = 3 AND parent_code = '725'),
     x AS (SELECT v.code AS vol, d.day, w.code AS ward, v.n,
                  CASE WHEN v.n % 20 = 19 THEN 4 WHEN v.n % 4 = 1 THEN 2
                       WHEN v.n % 4 = 2 THEN 3 ELSE 1 END AS status
           FROM v JOIN d ON d.k = v.n / 300 JOIN w ON w.k = v.n % 10)
INSERT INTO assignments (volunteer_code, day, campaign_id, unit_code, neighborhood_code, status,
                         checked_in_at, checked_out_at)
SELECT vol, day, :'camp', ward,
       -- every ward has at least 4 neighborhoods
       CASE WHEN n % 3 = 0 THEN ward || '-0' || (1 + n / 10 % 4) END,
       status,
       CASE WHEN status IN (2, 3) THEN (day + time '08:00') AT TIME ZONE 'Asia/Ho_Chi_Minh' END,
       CASE WHEN status = 3 THEN (day + time '17:00') AT TIME ZONE 'Asia/Ho_Chi_Minh' END
FROM x;

UPDATE waves SET assigned = (SELECT count(*) FROM assignments a
                             WHERE a.campaign_id = waves.campaign_id AND a.day = waves.day
                               AND a.status <> 4)
WHERE campaign_id = :'camp';

COMMIT;
ANALYZE;
