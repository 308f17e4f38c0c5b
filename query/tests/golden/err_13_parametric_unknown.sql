-- A parametric form we do not implement is refused with a clear error, never ignored.
SELECT histogram(5)(revenue) FROM events
