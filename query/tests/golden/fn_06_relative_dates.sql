-- today(), yesterday(), now(), date and datetime arithmetic as ClickHouse does it.
SELECT today() AS today, yesterday() AS yesterday, now() AS now,
       today() - 30 AS thirty_days_ago, now() - INTERVAL 24 HOUR AS day_ago,
       now() - 3600 AS hour_ago, toDate('2026-02-28') + 1 AS next_day
