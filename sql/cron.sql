--
-- Cron schedules: every syntax form, DST rules, leap years, last day of
-- month; and the errors for malformed schedules and unknown time zones.
--
SET timezone = 'UTC';

-- five fields, ranges, lists, steps
SELECT tego.cron_next('*/20 * * * *', '2026-01-01 00:00:00+00', 'UTC', 4);
SELECT tego.cron_next('5-7,30 9 * * *', '2026-01-01 00:00:00+00', 'UTC', 5);
SELECT tego.cron_next('0 9-17/4 * * *', '2026-01-01 00:00:00+00', 'UTC', 4);
SELECT tego.cron_next('15/20 * * * *', '2026-01-01 00:00:00+00', 'UTC', 3);
-- six fields, seconds first (Node's cron and cron-parser)
SELECT tego.cron_next('*/15 * * * * *', '2026-01-01 00:00:00+00', 'UTC', 5);
SELECT tego.cron_next('30 0 12 * * *', '2026-01-01 00:00:00+00', 'UTC', 2);
-- pg_cron's interval syntax, aligned to the epoch
SELECT tego.cron_next('10 seconds', '2026-01-01 00:00:03+00', 'UTC', 3);
SELECT tego.cron_next('1 second', '2026-01-01 00:00:00.5+00', 'UTC', 2);
-- names, 7 as Sunday, the day-of-month / day-of-week OR rule
SELECT tego.cron_next('0 9 * jan-mar mon-fri', '2026-03-27 10:00:00+00', 'UTC', 3);
SELECT to_char(t, 'Dy YYYY-MM-DD') FROM tego.cron_next('0 0 * * 7', '2026-01-01 00:00:00+00', 'UTC', 2) t;
SELECT to_char(t, 'Dy YYYY-MM-DD') FROM tego.cron_next('0 0 1 * mon', '2026-05-28 00:00:00+00', 'UTC', 4) t;
SELECT to_char(t, 'Dy YYYY-MM-DD') FROM tego.cron_next('0 0 * * mon', '2026-05-28 00:00:00+00', 'UTC', 2) t;
-- macros
SELECT tego.cron_next('@hourly', '2026-01-01 00:30:00+00', 'UTC', 2);
SELECT tego.cron_next('@daily', '2026-01-01 00:30:00+00', 'UTC', 1);
SELECT tego.cron_next('@midnight', '2026-01-01 00:30:00+00', 'UTC', 1);
SELECT tego.cron_next('@weekly', '2026-01-01 00:30:00+00', 'UTC', 1);
SELECT tego.cron_next('@monthly', '2026-01-15 00:30:00+00', 'UTC', 1);
SELECT tego.cron_next('@yearly', '2026-01-15 00:30:00+00', 'UTC', 1);
SELECT tego.cron_next('@annually', '2026-01-15 00:30:00+00', 'UTC', 1);

-- leap years and the last day of the month
SELECT tego.cron_next('0 0 29 2 *', '2026-01-01 00:00:00+00', 'UTC', 2);
SELECT tego.cron_next('0 0 $ 2 *', '2026-12-31 00:00:00+00', 'UTC', 3);
SELECT tego.cron_next('0 0 $ * *', '2026-01-15 00:00:00+00', 'UTC', 12);
SELECT tego.cron_next('0 0 1,15,$ * *', '2026-04-01 00:00:00+00', 'UTC', 4);

-- America/New_York: clocks go 02:00 EST -> 03:00 EDT on 2026-03-08 and
-- 02:00 EDT -> 01:00 EST on 2026-11-01 (fires shown in local time)
SET timezone = 'America/New_York';
-- a skipped wall time fires once, right after the jump
SELECT tego.cron_next('30 2 * * *', '2026-03-07 12:00:00-05', 'America/New_York', 3);
-- a repeated wall time fires once, at its first occurrence
SELECT t, t AT TIME ZONE 'UTC' AS utc
  FROM tego.cron_next('30 1 * * *', '2026-10-31 12:00:00-04', 'America/New_York', 3) t;
-- hour "*" follows real elapsed time: both copies of the repeated hour ...
SELECT t AT TIME ZONE 'UTC' AS utc
  FROM tego.cron_next('*/30 * * * *', '2026-11-01 00:50:00-04', 'America/New_York', 6) t;
-- ... and nothing inside the gap
SELECT t FROM tego.cron_next('*/30 * * * *', '2026-03-08 01:10:00-05', 'America/New_York', 3) t;
SELECT t AT TIME ZONE 'UTC' AS utc
  FROM tego.cron_next('0 */1 * * *', '2026-11-01 00:30:00-04', 'America/New_York', 3) t;

-- Europe/London: 01:00 GMT -> 02:00 BST on 2026-03-29, 02:00 BST -> 01:00
-- GMT on 2026-10-25
SET timezone = 'Europe/London';
SELECT tego.cron_next('30 1 * * *', '2026-03-28 12:00:00+00', 'Europe/London', 2);
SELECT t, t AT TIME ZONE 'UTC' AS utc
  FROM tego.cron_next('30 1 * * *', '2026-10-24 12:00:00+01', 'Europe/London', 2) t;
SELECT t AT TIME ZONE 'UTC' AS utc
  FROM tego.cron_next('0,30 * * * *', '2026-10-25 00:45:00+01', 'Europe/London', 4) t;
SELECT tego.cron_next('0 9 * * *', '2026-03-28 12:00:00+00', 'Europe/London', 2);
SET timezone = 'UTC';

-- errors
\set VERBOSITY default
SELECT tego.cron_next('');
SELECT tego.cron_next('   ');
SELECT tego.cron_next('* * * *');
SELECT tego.cron_next('* * * * * * *');
SELECT tego.cron_next('60 * * * *');
SELECT tego.cron_next('* 24 * * *');
SELECT tego.cron_next('* * 0 * *');
SELECT tego.cron_next('* * 32 * *');
SELECT tego.cron_next('* * * 13 *');
SELECT tego.cron_next('* * * * 8');
SELECT tego.cron_next('*/0 * * * *');
SELECT tego.cron_next('5-3 * * * *');
SELECT tego.cron_next('0 seconds');
SELECT tego.cron_next('60 seconds');
SELECT tego.cron_next('-5 seconds');
SELECT tego.cron_next('* * * foo *');
SELECT tego.cron_next('0 0 30 2 *');
SELECT tego.cron_next(E'* * * * *\x01');
SELECT tego.cron_next('@every 5m');
SELECT tego.cron_next('99999999999999999999 * * * *');
SELECT tego.cron_next(repeat('1,', 200) || '1 * * * *');
SELECT tego.cron_next('* * * * *', now(), 'Mars/Olympus_Mons');
SELECT tego.cron_next('* * * * *', now(), 'UTC', 0);
SELECT tego.cron_next('* * * * *', now(), 'UTC', 1001);
SELECT tego.cron_next(NULL);
SELECT tego.cron_next('* * * * *', NULL);
SELECT tego.cron_next('* * * * *', now(), NULL);
SELECT tego.cron_next('* * * * *', 'infinity');
