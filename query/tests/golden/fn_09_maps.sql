-- Map access on event_data and attribution; a missing key is NULL; toFloat64OrZero never fails.
SELECT event_type, attribution['campaign'] AS campaign, attribution['source'] AS source,
       event_data['sku'] AS sku, toFloat64OrZero(event_data['revenue']) AS rev
FROM events WHERE app_id = 'shop' ORDER BY timestamp
