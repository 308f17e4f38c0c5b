-- Day, week (Sunday start), month buckets, toYYYYMM and toDate.
SELECT toDate(timestamp) AS d, toStartOfDay(timestamp) AS day, toStartOfWeek(timestamp) AS week,
       toStartOfMonth(timestamp) AS month, toYYYYMM(timestamp) AS yyyymm, count() AS n
FROM events GROUP BY 1, 2, 3, 4, 5 ORDER BY d
