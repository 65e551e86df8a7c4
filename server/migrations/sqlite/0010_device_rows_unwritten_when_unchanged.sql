-- A device's rows of the grids and tasks it holds record only that it holds them (and when it received a task,
-- and deleted it): the heads and time of its last sync were never read, and rewriting them made every sync,
-- even one with nothing new, a write.
ALTER TABLE device_grids DROP COLUMN heads;
ALTER TABLE device_grids DROP COLUMN last_sync_at;
ALTER TABLE device_tasks DROP COLUMN heads;
ALTER TABLE device_tasks DROP COLUMN last_sync_at;
