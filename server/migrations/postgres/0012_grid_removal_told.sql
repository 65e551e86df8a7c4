-- When the server told a device that a grid it holds was taken from its team (server time, ms): what the device
-- records in that grid afterwards is refused; what it recorded before is still accepted. Cleared when the grid
-- is given back to the device's team.
ALTER TABLE device_grids ADD COLUMN removal_told_at BIGINT;
